"""Speed and memory of the exact engine, measured side by side with baselines in one process.

Run:  python benchmarks/analytic_speed.py [--draws 10000] [--big 1000000]

Prints
1. seed_countries, S draws. The transcription of the original R loop
   (benchmarks/_original_transcription.py) draws tau, mu and theta; the like-for-like engine job
   is fit + ``sample(predictive=False)`` (tau, mu, theta, theta_new as a DataTree): target
   >= 100x faster. Also the engine's full output (adding y_rep and the log-likelihood), the
   same on one thread, and the floor: numpy drawing the same number of standard normals
   (target: draws within 3x of it).
2. A million simulated studies: fit + exact summary (every theta_j and y_pred_j with quantiles and
   shortest intervals) wall time and peak memory, in a child process so the peak is its own.
   Targets: < 5 s and < 2 GB.

Timings are the best of several runs (the least disturbed by other load on the machine).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _original_transcription import original_analysis  # noqa: E402

from metapool import datasets  # noqa: E402
from metapool.analytic import fit  # noqa: E402
from _timing import best_of  # noqa: E402  (benchmarks/ is on sys.path when run as a script)




def seed_comparison(S: int) -> None:
    from metapool.analytic._threads import default_threads

    d = datasets.load("seed_countries")
    J = d.J
    engine_fit = best_of(lambda: fit(d), repeat=31, warmup=3)
    post = fit(d)
    job = best_of(lambda: post.sample(draws=S, chains=1, seed=1, predictive=False), repeat=31, warmup=3)
    job_1 = best_of(lambda: post.sample(draws=S, chains=1, seed=1, predictive=False, threads=1), repeat=31, warmup=3)
    full = best_of(lambda: post.sample(draws=S, chains=1, seed=1), repeat=31, warmup=3)
    full_1 = best_of(lambda: post.sample(draws=S, chains=1, seed=1, threads=1), repeat=31, warmup=3)
    rng = np.random.default_rng(0)
    n_job = S * (d.p + J + 1)                 # beta, theta_j, theta_new
    n_full = S * (d.p + 2 * J + 1)            # and y_rep_j
    floor_job = best_of(lambda: rng.standard_normal(n_job), repeat=31, warmup=3)
    floor_full = best_of(lambda: rng.standard_normal(n_full), repeat=31, warmup=3)
    transcription = best_of(lambda: original_analysis(d.y, d.se, S, seed=0), repeat=3)
    summary = best_of(lambda: post.summary(), repeat=3)
    threads = min(default_threads(), -(-S // 1024))
    w = 58
    print(f"seed_countries (J = {J}, SIMULATED stand-in), {S} draws, {threads} thread(s) for draws")
    print(f"  {'transcription of the original loop (tau, mu, theta)':{w}s}{transcription:9.4f} s")
    print(f"  {'engine: fit':{w}s}{engine_fit:9.4f} s  ({post.tau_nodes.size} nodes, "
          f"error estimate {post.error_estimate:.1e})")
    print(f"  {'engine: draws of tau, mu, theta, theta_new (DataTree)':{w}s}{job:9.4f} s  (one thread {job_1:.4f} s)")
    print(f"  {'engine: full draws (+ y_rep, log-likelihood)':{w}s}{full:9.4f} s  (one thread {full_1:.4f} s)")
    print(f"  {'engine: exact summary table':{w}s}{summary:9.4f} s")
    print(f"  {f'floor: {n_job} standard normals (job)':{w}s}{floor_job:9.4f} s")
    print(f"  {f'floor: {n_full} standard normals (full)':{w}s}{floor_full:9.4f} s")
    print(f"  ratio transcription / engine (fit + the same job)       {transcription / (engine_fit + job):7.1f}x"
          "  (target >= 100x)")
    print(f"    the same on one thread                               {transcription / (engine_fit + job_1):7.1f}x")
    print(f"    transcription / (fit + full draws)                   {transcription / (engine_fit + full):7.1f}x")
    print(f"  ratio engine draws / floor, job                        {job / floor_job:7.2f}x  (target <= 3x; "
          f"one thread {job_1 / floor_job:.2f}x)")
    print(f"  ratio engine draws / floor, full                       {full / floor_full:7.2f}x  (one thread "
          f"{full_1 / floor_full:.2f}x)")


CHILD = r"""
import json, resource, sys, time
def peak_mb():
    # VmHWM: this process's own peak (ru_maxrss can carry the parent's from before exec)
    try:
        with open("/proc/self/status") as fh:
            return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
import numpy as np
from metapool import MetaData
from metapool.analytic import fit
J = int(sys.argv[1])
rng = np.random.default_rng(2024)
s = np.exp(rng.normal(np.log(0.02), 0.5, J))
y = rng.normal(rng.normal(0.01, 0.003, J), s)
t0 = time.perf_counter()
d = MetaData.from_arrays(y, s)
t_data = time.perf_counter() - t0
runs = []
for _ in range(2):  # first run and a repeat; the report gives both
    t1 = time.perf_counter()
    post = fit(d)
    t2 = time.perf_counter()
    sm = post.summary()
    t3 = time.perf_counter()
    runs.append((t2 - t1, t3 - t2))
    del sm, post
post = fit(d)
sm = post.summary()
assert np.isfinite(sm.to_numpy()).all()
peak = peak_mb()
print(json.dumps({"data": t_data, "runs": runs, "peak_mb": peak,
                  "rows": len(sm), "nodes": int(post.tau_nodes.size), "error": post.error_estimate}))
"""


def million(J: int) -> None:
    out = subprocess.run([sys.executable, "-c", CHILD, str(J)], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    base = subprocess.run([sys.executable, "-c", "import numpy, metapool.analytic; "
                           "print(next(int(l.split()[1]) for l in open('/proc/self/status') "
                           "if l.startswith('VmHWM')) / 1024)"],
                          capture_output=True, text=True, check=True)
    print(f"{J} simulated studies: exact summary of {r['rows']} rows")
    (f1, s1), (f2, s2) = r["runs"]
    print(f"  fit ({r['nodes']} nodes, error estimate {r['error']:.1e})  {f1:7.2f} s  (repeat {f2:.2f} s)")
    print(f"  summary                          {s1:7.2f} s  (repeat {s2:.2f} s)")
    print(f"  fit + summary                    {f1 + s1:7.2f} s  (repeat {f2 + s2:.2f} s; target < 5 s)")
    print(f"  building MetaData (validation)   {r['data']:7.2f} s (not counted)")
    print(f"  peak resident memory             {r['peak_mb']:7.0f} MB  (interpreter + imports alone: "
          f"{float(base.stdout):.0f} MB; target < 2048 MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=10_000)
    ap.add_argument("--big", type=int, default=1_000_000)
    args = ap.parse_args()
    seed_comparison(args.draws)
    million(args.big)


if __name__ == "__main__":
    main()
