"""The HTML report: every file it references exists, and a real browser (headless Chromium) shows it."""

from __future__ import annotations

import html
import re
import shutil
import subprocess

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from metapool import datasets, outputs, report, workflow  # noqa: E402


def _run(tmp_path, name, files, manifest=None):
    out = tmp_path / name
    written = outputs.write_run(out, files, manifest or {"metapool_version": "test"})
    return out, written


@pytest.fixture(scope="module")
def exact_run(tmp_path_factory):
    result = workflow.fit(datasets.load("eight_schools"), with_draws=True, draws=1000, seed=2)
    files = workflow.fit_files(result, ["A", "C"], command="metapool fit eight_schools --out DIR")
    return _run(tmp_path_factory.mktemp("exact"), "run", files, workflow.run_manifest(["fit"], result))


@pytest.fixture(scope="module")
def nuts_run(tmp_path_factory, nuts_fit):
    dt = nuts_fit("bcg", "~ ablat")
    data = datasets.load("bcg", covariates="~ ablat")
    from metapool.models import summarize
    from metapool.spec import model_spec

    result = workflow.FitResult(model_spec(data, None, None, None, None), "nuts", summarize(dt), draws=dt, seed=1)
    files = workflow.fit_files(result, command="metapool fit bcg --covariates '~ ablat' --engine nuts")
    return _run(tmp_path_factory.mktemp("nuts"), "run", files)


def _check_references(out, written):
    page = (out / report.REPORT).read_text()
    refs = report.referenced_files(page)
    assert refs, "the report references no file"
    for ref in refs:
        assert not re.match(r"^[a-z]+:", ref), f"{ref} is not a relative file name"
        assert (out / ref).is_file(), ref
    # every file of the run is linked, every figure is shown
    assert set(refs) == set(written)
    imgs = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(html.unescape(i) for i in imgs) == sorted(n for n in written if n.endswith(".png"))
    assert "http://" not in page and "https://" not in page and "<script" not in page
    return page, imgs


def test_exact_report_lists_every_file(exact_run):
    out, written = exact_run
    page, imgs = _check_references(out, written)
    assert set(imgs) == {"tau_density.png", "conditional_means.png", "shrinkage.png", "forest.png", "funnel.png",
                         "predictive_A.png", "predictive_C.png"}
    assert "metapool fit eight_schools --out DIR" in page
    assert "<td>studies J</td><td>8</td>" in page
    # the main table shows the exact summary's numbers
    table = pd.read_csv(out / "summary.csv", index_col="parameter")
    assert f"<td>{table.loc['tau', 'mean']:.4g}</td>" in page


def test_nuts_regression_report(nuts_run):
    out, written = nuts_run
    _, imgs = _check_references(out, written)
    assert "regression.png" in imgs and "funnel.png" not in imgs and "conditional_means.png" not in imgs


def test_validation_report(tmp_path, nuts_fit):
    from metapool import analytic
    from metapool.spec import model_spec
    from metapool.validation import compare

    data = datasets.load("eight_schools")
    post = analytic.fit(data)
    dt = nuts_fit("eight_schools")
    result = workflow.ValidationResult(model_spec(data, None, None, None, None), compare(dt, post), post, dt)
    files = workflow.validation_files(result, command="metapool validate eight_schools")
    assert [f.name for f in files] == list(workflow.validation_file_names(data).values())
    out, written = _run(tmp_path, "val", files)
    page, imgs = _check_references(out, written)
    assert len(imgs) == 4 and ("PASSED" in page) == result.passed


def test_data_summary_numbers():
    from metapool.heterogeneity import heterogeneity

    data = datasets.load("bcg")
    s = report.data_summary(data)["value"]
    h = heterogeneity(data)
    assert s["studies J"] == "13" and s["effect measure"] == "RR"
    assert s["I^2 (REML)"] == f"{100 * h.i2:.1f} %"
    assert s["effects y_j (min / median / max)"].split(" / ")[0] == f"{np.min(data.y):.4g}"


def test_html_escapes_labels():
    data = datasets.load("eight_schools")
    page = report.render_html("a <b> & c", "metapool fit 'x<y'", data,
                              [report.ReportTable("t", pd.DataFrame({"v": [1.0]}, index=pd.Index(["<i>"], name="p")))],
                              [report.ReportFigure("f&g.png", "cap <x>")], files=["f&g.png"])
    assert "<b>" not in page and "&lt;b&gt;" in page and "<i>" not in page
    assert report.referenced_files(page) == ["f&g.png"]


# ----------------------------------------------------------------------------- a real browser
def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe:
        return exe
    if shutil.which("apt-get") is None:
        pytest.skip("headless Chromium is not installed and apt-get is unavailable to install it "
                    "(Debian's package 'chromium'; .ci/run installs it where apt-get exists)")
    pytest.fail("headless Chromium is not installed: run .ci/run, or apt-get install -y chromium")


_PROBE = ("<script>window.addEventListener('load', () => {const d = document.createElement('pre'); "
          "d.id = 'probe'; d.textContent = JSON.stringify([...document.images].map(i => "
          "[i.getAttribute('src'), i.complete, i.naturalWidth, i.naturalHeight])); "
          "document.body.appendChild(d);});</script>")


def test_report_renders_in_chromium(exact_run, tmp_path):
    import json

    import matplotlib.image as mpimg

    exe = _chromium()
    out, written = exact_run
    # a copy of the page with a probe that writes every image's natural size into the DOM
    probe_dir = tmp_path / "copy"
    shutil.copytree(out, probe_dir)
    page = (probe_dir / report.REPORT).read_text().replace("</body>", _PROBE + "</body>")
    (probe_dir / "probe.html").write_text(page)
    base = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
            "--virtual-time-budget=10000"]
    dom = subprocess.run([*base, "--dump-dom", (probe_dir / "probe.html").as_uri()], capture_output=True,
                         text=True, timeout=120).stdout
    m = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert m, f"the probe did not run; DOM starts {dom[:300]!r}"
    images = json.loads(html.unescape(m.group(1)))
    assert sorted(i[0] for i in images) == sorted(n for n in written if n.endswith(".png"))
    for src, complete, width, height in images:
        assert complete and width > 300 and height > 200, (src, width, height)
    shot = tmp_path / "shot.png"
    subprocess.run([*base, f"--screenshot={shot}", "--window-size=1200,2400", (out / report.REPORT).as_uri()],
                   capture_output=True, timeout=120, check=True)
    pixels = mpimg.imread(shot)[..., :3]
    colours = np.unique((pixels.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert len(colours) > 200, f"the screenshot looks blank ({len(colours)} colours)"
    dark = np.mean(pixels.sum(axis=-1) < 1.5)
    assert 0.005 < dark < 0.5, dark   # text and lines on a light page
