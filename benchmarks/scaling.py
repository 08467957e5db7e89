"""How the exact engine's cost grows with the number of studies, for three shapes of data.

Run:  python benchmarks/scaling.py [--sizes 100 1000 10000 100000 1000000] [--repeat 3]
      python benchmarks/scaling.py --quick        (up to 10^5; a couple of minutes)

Prints
1. A table over J = 10^2 .. 10^6 for three simulated data shapes (seeded with
   ``numpy.random.default_rng(20261201 + J)``):
   - ``equal``: every standard error 1, y ~ N(0, 1 + 0.3^2) (tau = 0.3);
   - ``spread``: standard errors log-uniform over two orders of magnitude (0.1 .. 10), tau = 0.3;
   - ``tau0``: standard errors 1, y ~ N(0, 1) (tau = 0: the posterior of tau piles up at 0).
   Per row: tau nodes, the rows the sums over studies run over (J, or the distinct (s_j, x_j)
   when studies sharing them are collapsed into exact sufficient sums), fit, summary (every parameter's mean, sd, quantiles and shortest
   interval), fit + summary, peak resident memory (VmHWM of a child process that runs only that
   row), and the cost per study relative to the J = 10^5 row of the same shape.
2. seed_countries (79 studies): fit + summary, and fit + 10,000 draws against numpy drawing the
   same number of standard normals (all threads and one thread).

Targets (issue 13): the cost per study never rises by more than 1.5x between neighbouring rows;
fit + summary under 3 s and 1 GB at a million studies and under 0.1 s at 10,000, for every shape;
fit + summary of seed_countries under 20 ms; fit + 10,000 draws within 1.5x of numpy's normals
(one thread: within 2x; also printed in CPU time, less disturbed by other load on a shared machine).
Timings are the best of ``--repeat`` runs in the child (the least
disturbed by other load on the machine); the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
from _timing import best_cpu, best_of  # benchmarks/ is on sys.path when run as a script

SHAPES = ("equal", "spread", "tau0")

CHILD = r"""
import json, sys, time
import numpy as np
def peak_mb():
    # VmHWM: this process's own peak (ru_maxrss can carry the parent's from before exec)
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM")) / 1024
from metapool import MetaData
from metapool.analytic import fit
shape, J, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(20261201 + J)
if shape == "equal":
    s = np.ones(J); y = rng.normal(0.0, np.sqrt(1 + 0.3**2), J)
elif shape == "spread":
    s = np.exp(rng.uniform(np.log(0.1), np.log(10.0), J)); y = rng.normal(0.0, np.sqrt(s**2 + 0.3**2))
else:
    s = np.ones(J); y = rng.normal(0.0, 1.0, J)
d = MetaData.from_arrays(y, s)
best_f = best_s = float("inf")
for _ in range(repeat):
    t1 = time.perf_counter(); post = fit(d); t2 = time.perf_counter()
    sm = post.summary(); t3 = time.perf_counter()
    best_f, best_s = min(best_f, t2 - t1), min(best_s, t3 - t2)
assert np.isfinite(sm.to_numpy()).all()
g = post.problem.prepared.groups
print(json.dumps({"nodes": int(post.tau_nodes.size), "rows": int(J if g is None else g.se2.size),
                  "fit": best_f, "summary": best_s,
                  "peak_mb": peak_mb(), "error": float(post.error_estimate)}))
"""


def run_row(shape: str, J: int, repeat: int) -> dict:
    """One row of the table, measured in a child process of its own (its peak memory is its own)."""
    out = subprocess.run([sys.executable, "-c", CHILD, shape, str(J), str(repeat)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def scaling_table(sizes: list[int], repeat: int) -> None:
    print(f"{'shape':7s} {'J':>9s} {'nodes':>6s} {'rows':>7s} {'fit s':>8s} {'summary s':>10s} {'total s':>8s} "
          f"{'peak MB':>8s} {'per study vs 1e5':>17s} {'vs previous':>12s}")
    for shape in SHAPES:
        rows = {J: run_row(shape, J, repeat) for J in sizes}
        ref_J = 100_000 if 100_000 in rows else max(rows)
        per = {J: (r["fit"] + r["summary"]) / J for J, r in rows.items()}
        prev = None
        for J, r in rows.items():
            rel = per[J] / per[ref_J]
            step = f"{per[J] / per[prev]:11.2f}x" if prev else f"{'':12s}"
            print(f"{shape:7s} {J:9d} {r['nodes']:6d} {r['rows']:7d} {r['fit']:8.3f} {r['summary']:10.3f} "
                  f"{r['fit'] + r['summary']:8.3f} {r['peak_mb']:8.0f} {rel:16.2f}x {step}")
            prev = J
    print("targets: per-study cost rises <= 1.5x between neighbouring rows; total < 3 s and < 1024 MB at 1e6; "
          "< 0.1 s at 1e4")




def seed_rows(draws: int) -> None:
    from metapool import datasets
    from metapool.analytic import fit

    d = datasets.load("seed_countries")
    fit_t = best_of(lambda: fit(d), 21, warmup=5)
    post = fit(d)
    both = best_of(lambda: fit(d).summary(), 11, warmup=2)
    rng = np.random.default_rng(0)
    n = draws * (d.p + d.J + 1)
    job_fn = lambda: fit(d).sample(draws=draws, chains=1, seed=1, predictive=False)  # noqa: E731
    job1_fn = lambda: fit(d, threads=1).sample(draws=draws, chains=1, seed=1, predictive=False, threads=1)  # noqa: E731
    floor_fn = lambda: rng.standard_normal(n)  # noqa: E731
    # Steady state after warm-up calls, in rounds that alternate the jobs with the floor so that a
    # change of the machine's speed during the run moves both sides of each ratio alike.
    job = job_1 = floor = cpu_1 = cpu_floor = np.inf
    for _ in range(5):
        job = min(job, best_of(job_fn, 11, warmup=3))
        job_1 = min(job_1, best_of(job1_fn, 11, warmup=3))
        floor = min(floor, best_of(floor_fn, 11, warmup=3))
        # One thread in CPU time as well: on a shared machine the wall times above include waiting.
        cpu_1 = min(cpu_1, best_cpu(job1_fn, 11, warmup=1))
        cpu_floor = min(cpu_floor, best_cpu(floor_fn, 11, warmup=1))
    print(f"\nseed_countries (J = {d.J}): fit {fit_t * 1e3:.1f} ms ({post.tau_nodes.size} nodes); "
          f"fit + summary {both * 1e3:.1f} ms (target < 20 ms)")
    print(f"  fit + {draws} draws (tau, mu, theta, theta_new) {job * 1e3:.1f} ms; one thread {job_1 * 1e3:.1f} ms; "
          f"numpy {n} normals {floor * 1e3:.1f} ms: ratio {job / floor:.2f}x (target <= 1.5x), "
          f"one thread {job_1 / floor:.2f}x (target <= 2x)")
    print(f"  one thread in CPU time: {cpu_1 * 1e3:.1f} ms against {cpu_floor * 1e3:.1f} ms: {cpu_1 / cpu_floor:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000, 100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="sizes up to 10^5 only")
    ap.add_argument("--draws", type=int, default=10_000)
    args = ap.parse_args()
    sizes = [J for J in args.sizes if J <= 100_000] if args.quick else args.sizes
    scaling_table(sizes, args.repeat)
    seed_rows(args.draws)


if __name__ == "__main__":
    main()
