"""One HTML page per run: ``index.html`` beside the tables and figures that ``--out`` writes.

The page shows the command, a summary of the data, the tables and the figures together, and
links every other file of the run. It is self-contained for offline reading: inline CSS, no
scripts, no network resources; figures are PNG files beside it, referenced by relative names.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "REPORT",
    "ReportFigure",
    "ReportTable",
    "data_summary",
    "render_html",
    "referenced_files",
    "report_writer",
]

#: The report's file name in the run folder.
REPORT = "index.html"

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ddd;
     padding-bottom: 0.2em; margin-top: 1.6em; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.92em; }
pre { background: #f5f5f7; padding: 0.7em 1em; overflow-x: auto; border-radius: 4px; }
table { border-collapse: collapse; font-size: 0.88em; margin: 0.5em 0 1em 0; }
th, td { padding: 0.2em 0.7em; border-bottom: 1px solid #e5e5e5; text-align: right; }
th:first-child, td:first-child { text-align: left; white-space: nowrap; } thead th { border-bottom: 2px solid #999; }
div.scroll { overflow-x: auto; max-width: 100%; }
figure { margin: 1em 0 2em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; margin-top: 0.3em; }
.note { color: #555; font-size: 0.92em; } details summary { cursor: pointer; color: #0645ad; }
ul.files { columns: 3; font-size: 0.9em; }
"""


@dataclass(frozen=True)
class ReportFigure:
    """A figure file of the run and its caption."""

    file: str
    caption: str


@dataclass(frozen=True)
class ReportTable:
    """A table shown in the report: a title, the frame, optionally the file it was written to.

    ``collapsed`` tables are shown inside a closed ``<details>`` element (long tables).
    """

    title: str
    frame: pd.DataFrame
    file: str | None = None
    collapsed: bool = False
    digits: int = field(default=4)


def data_summary(data: Any) -> pd.DataFrame:
    """One table describing the studies: size, design, effects, standard errors, heterogeneity.

    Parameters
    ----------
    data : MetaData

    Returns
    -------
    pandas.DataFrame
        Index ``item``, one column ``value`` (strings): dataset, studies J, measure,
        coefficients, effects (min, median, max), standard errors (min, median, max),
        Cochran's Q (df, p) and I^2 with the REML tau (:func:`metapool.heterogeneity.heterogeneity`;
        residual heterogeneity for a meta-regression).
    """
    from metapool.heterogeneity import heterogeneity

    y, se = np.asarray(data.y, dtype=float), np.asarray(data.se, dtype=float)
    rows = [
        ("dataset", str(data.name or "data")),
        ("studies J", str(data.J)),
        ("effect measure", str(getattr(data, "measure", None) or "given directly")),
        ("coefficients", ", ".join(data.coef_names)),
        ("effects y_j (min / median / max)", f"{y.min():.4g} / {np.median(y):.4g} / {y.max():.4g}"),
        ("standard errors s_j (min / median / max)", f"{se.min():.4g} / {np.median(se):.4g} / {se.max():.4g}"),
    ]
    try:
        h = heterogeneity(data)
        rows += [
            ("Cochran's Q (df, p)", f"{h.q:.4g} ({h.df}, {h.q_pvalue:.3g})"),
            ("I^2 (REML)" if data.intercept_only else "residual I^2 (REML)", f"{100 * h.i2:.1f} %"),
            ("tau (REML)" if data.intercept_only else "residual tau (REML)", f"{h.tau:.4g}"),
        ]
    except ValueError:  # too few studies for the estimates
        pass
    return pd.DataFrame(rows, columns=["item", "value"]).set_index("item")


def _table_html(t: ReportTable) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return "" if not np.isfinite(v) else f"{float(v):.{t.digits}g}"
        return html.escape(str(v))

    frame = t.frame
    index_name = frame.index.name or ""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [index_name, *frame.columns])
    body = "\n".join("<tr>" + f"<td>{html.escape(str(i))}</td>" + "".join(f"<td>{fmt(v)}</td>" for v in row)
                     + "</tr>" for i, row in zip(frame.index, frame.itertuples(index=False)))
    table = f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table></div>'
    link = f' <span class="note">(<a href="{html.escape(t.file)}">{html.escape(t.file)}</a>)</span>' if t.file else ""
    if t.collapsed:
        return (f"<h2>{html.escape(t.title)}{link}</h2>\n<details><summary>show {len(frame)} rows</summary>\n"
                f"{table}\n</details>")
    return f"<h2>{html.escape(t.title)}{link}</h2>\n{table}"


def render_html(title: str, command: str | None, data: Any, tables: Sequence[ReportTable] = (),
                figures: Sequence[ReportFigure] = (), notes: Sequence[str] = (), files: Sequence[str] = ()) -> str:
    """The report page as a string.

    Parameters
    ----------
    title : str
    command : str or None
        The command line that made the run (shown verbatim).
    data : MetaData
        Summarised by :func:`data_summary`.
    tables : sequence of ReportTable
    figures : sequence of ReportFigure
        Figure files, referenced relatively (they must sit beside the page).
    notes : sequence of str
        Lines of text under the title (engine facts, verdicts).
    files : sequence of str
        Every file of the run, listed with links at the end.

    Returns
    -------
    str
        An HTML5 document with no scripts and no external resources.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if command:
        parts.append(f"<pre>{html.escape(command)}</pre>")
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in notes]
    parts.append(_table_html(ReportTable("Data", data_summary(data))))
    for t in tables:
        parts.append(_table_html(t))
    if figures:
        parts.append("<h2>Figures</h2>")
    for fig in figures:
        src = html.escape(fig.file)
        parts.append(f'<figure id="fig-{html.escape(re.sub(r"[^A-Za-z0-9_-]", "_", fig.file))}">'
                     f'<img src="{src}" alt="{html.escape(fig.caption)}">'
                     f"<figcaption>{html.escape(fig.caption)} (<code>{src}</code>)</figcaption></figure>")
    if files:
        parts.append("<h2>Files of this run</h2>")
        parts.append('<ul class="files">' + "".join(f'<li><a href="{html.escape(f)}">{html.escape(f)}</a></li>'
                                                    for f in files) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


_REF = re.compile(r'(?:src|href)="([^"]+)"')


def referenced_files(page: str) -> list[str]:
    """Every ``src`` / ``href`` target of a report page, in order, unescaped (for checks)."""
    return list(dict.fromkeys(html.unescape(m) for m in _REF.findall(page)))


def report_writer(make: Callable[[], str]) -> Callable[[Any], None]:
    """A writer (for :class:`metapool.outputs.OutputFile`) of the page that ``make()`` returns."""
    return lambda path: path.write_text(make(), encoding="utf-8")
