"""A fast start: import times and a cold ``metapool fit``, each in a fresh interpreter.

Run:  python benchmarks/startup.py [--repeat 5]

Prints, for each job, the best wall time of ``--repeat`` fresh subprocesses (the least disturbed
by other load on the machine), the target beside it where issue 13 sets one, the best CPU time
(user + system: less disturbed by load than wall time on a shared machine), and two counts that
do not depend on load: the modules the job leaves in ``sys.modules`` and whether pandas is one.

Jobs: the interpreter alone (the floor every job pays), ``import numpy``, ``import
metapool.analytic`` (target < 0.5 s), ``import metapool``, and the cold CLI, ``metapool fit`` of
the bundled 79-study ``seed_countries`` with the exact engine, by name and as the README's CSV
command (target < 0.7 s). Each table twice: as this environment starts Python (which may compile
metapool's own modules from source every time: an editable install with ``PYTHONDONTWRITEBYTECODE``
set), and with every module's bytecode cached, as a pip-installed metapool starts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CSV = ROOT / "metapool" / "datasets" / "seed_countries_simulated.csv"

# The job's own code, then a line of JSON about sys.modules (printed to stderr, after the job's output).
PROBE = """{body}
import json as _json, sys as _sys
_mods = {{m.split(".")[0] for m in _sys.modules}}
print(_json.dumps([len(_sys.modules), "pandas" in _mods]), file=_sys.stderr)
"""

CLI = "import sys; from metapool.cli import main; rc = main({argv!r})"

JOBS: list[tuple[str, str, float | None]] = [
    ("python (interpreter alone)", "pass", None),
    ("import numpy", "import numpy", None),
    ("import metapool.analytic", "import metapool.analytic", 0.5),
    ("import metapool", "import metapool", None),
    ("metapool fit seed_countries", CLI.format(argv=["fit", "seed_countries"]), 0.7),
    ("metapool fit seed_countries_simulated.csv",
     CLI.format(argv=["fit", str(CSV), "--effect", "X_beta", "--se", "X_stderr", "--label", "country"]), 0.7),
]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(body: str, env: dict[str, str] | None = None) -> tuple[float, float, int, bool]:
    """Wall and CPU (user + system) seconds of one fresh interpreter running ``body``; its module
    count; whether it loaded pandas."""
    cpu, t = _children_cpu(), time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PROBE.format(body=body)], capture_output=True, text=True,
                         check=True, env=env)
    wall, cpu = time.perf_counter() - t, _children_cpu() - cpu
    n_modules, pandas = json.loads(out.stderr.strip().splitlines()[-1])
    return wall, cpu, n_modules, pandas


def cached_bytecode_env(folder: str) -> dict[str, str]:
    """The environment of a start from compiled bytecode, as a pip-installed metapool runs (pip
    compiles ``.pyc`` files at install): every module's bytecode cached under ``folder``, which
    leaves the source tree alone. An editable install under ``PYTHONDONTWRITEBYTECODE=1``
    compiles metapool's own modules from source at every start instead."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = folder
    for _, body, _ in JOBS:  # fill the cache
        run_once(body, env)
    return env


def report(title: str, repeat: int, env: dict[str, str] | None) -> None:
    print(title)
    print(f"  {'job':<44}{'wall s':>8}{'target':>8}{'cpu s':>8}{'modules':>9}  pandas")
    for name, body, target in JOBS:
        runs = [run_once(body, env) for _ in range(repeat)]
        wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
        _, _, n_modules, pandas = runs[-1]
        shown = f"< {target:.1f}" if target else ""
        flag = "  MISSED" if target and wall >= target else ""
        print(f"  {name:<44}{wall:>8.3f}{shown:>8}{cpu:>8.3f}{n_modules:>9}  {'yes' if pandas else 'no'}{flag}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="fresh subprocesses per job (best of)")
    args = ap.parse_args()
    own = "PYTHONDONTWRITEBYTECODE=1: metapool compiled from source at each start" \
        if os.environ.get("PYTHONDONTWRITEBYTECODE") else "bytecode as this environment caches it"
    report(f"This environment ({own}):", args.repeat, None)
    with tempfile.TemporaryDirectory() as folder:
        report("Cached bytecode for every module (as a pip-installed metapool starts):", args.repeat,
               cached_bytecode_env(folder))
    print(f"(best of {args.repeat} fresh processes each; the times include the interpreter's own start; "
          "cpu: user + system, less disturbed by other load than wall)")


if __name__ == "__main__":
    main()
