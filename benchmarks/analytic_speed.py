"""Speed and memory of the exact engine, measured side by side with baselines in one process.

Run:  python benchmarks/analytic_speed.py [--draws 10000] [--big 1000000]

Prints
1. seed_countries, S draws: the engine (fit + S independent draws of tau, mu, theta, y_rep and the
   log-likelihood, as a DataTree) against a per-draw Python transcription of the original R loop
   (benchmarks/_original_transcription.py), and against the floor: numpy drawing the same number
   of standard normals. Targets: >= 100x faster than the transcription, within 3x of the floor.
2. A million simulated studies: fit + exact summary (every theta_j and y_pred_j with quantiles and
   shortest intervals) wall time and peak memory, in a child process so the peak is its own.
   Targets: < 5 s and < 2 GB.
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

from metapool import MetaData, datasets  # noqa: E402
from metapool.analytic import fit  # noqa: E402


def best_of(fn, repeat: int = 5) -> float:
    """Smallest wall time of `repeat` calls (the least disturbed by other load)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def seed_comparison(S: int) -> None:
    d = datasets.load("seed_countries")
    J = d.J
    engine_fit = best_of(lambda: fit(d))
    post = fit(d)
    engine_draws = best_of(lambda: post.sample(draws=S, chains=1, seed=1))
    engine_total = engine_fit + engine_draws
    engine_job = best_of(lambda: post.sample(draws=S, chains=1, seed=1, predictive=False))
    rng = np.random.default_rng(0)
    n_normals_orig = S * (1 + J)            # the original draws mu and theta_j
    n_normals_engine = S * (d.p + 2 * J + 1)  # beta, theta_j, y_rep_j, theta_new
    floor_orig = best_of(lambda: rng.standard_normal(n_normals_orig))
    floor_engine = best_of(lambda: rng.standard_normal(n_normals_engine))
    transcription = best_of(lambda: original_analysis(d.y, d.se, S, seed=0), repeat=2)
    summary = best_of(lambda: post.summary(), repeat=3)
    print(f"seed_countries (J = {J}, SIMULATED stand-in), {S} draws")
    print(f"  transcription of the original loop     {transcription:9.4f} s")
    print(f"  engine: fit                            {engine_fit:9.4f} s  ({post.tau_nodes.size} nodes, "
          f"error estimate {post.error_estimate:.1e})")
    print(f"  engine: {S} draws as a DataTree      {engine_draws:9.4f} s")
    print(f"  engine: {S} draws of tau, mu, theta only (the original's job)  {engine_job:9.4f} s")
    print(f"  engine: exact summary table            {summary:9.4f} s")
    print(f"  floor: {n_normals_orig} standard normals (original's count)  {floor_orig:9.4f} s")
    print(f"  floor: {n_normals_engine} standard normals (engine's count)    {floor_engine:9.4f} s")
    print(f"  ratio transcription / engine (fit + draws)      {transcription / engine_total:8.1f}x  (target >= 100x)")
    print(f"  ratio transcription / engine (fit + the original's job)  {transcription / (engine_fit + engine_job):8.1f}x")
    print(f"  ratio engine draws / floor (same normal count)  {engine_draws / floor_engine:8.2f}x  (target <= 3x)")
    print(f"  ratio engine fit + draws / floor                {engine_total / floor_engine:8.2f}x")


CHILD = r"""
import json, resource, sys, time
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
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"data": t_data, "runs": runs, "peak_mb": peak,
                  "rows": len(sm), "nodes": int(post.tau_nodes.size), "error": post.error_estimate}))
"""


def million(J: int) -> None:
    out = subprocess.run([sys.executable, "-c", CHILD, str(J)], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    base = subprocess.run([sys.executable, "-c", "import resource, numpy, metapool.analytic; "
                           "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"],
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
