"""Heavy checks, opt in with ``pytest -m slow`` (``.ci/run`` deselects them).

Scaling (a million studies) and larger simulation-based calibration than the CI suite runs.
Timings are not asserted here: benchmarks/analytic_speed.py prints them.
"""

from __future__ import annotations

import numpy as np
import pytest

from metapool import MetaData, datasets
from metapool.analytic import fit
from metapool.priors import HalfCauchyTau, HalfNormalTau, NormalBeta
from metapool.validation import sbc

pytestmark = pytest.mark.slow


def test_a_million_studies_exact_summary():
    """Log-space quadrature and chunked mixtures at J = 1e6: finite, consistent, converged."""
    rng = np.random.default_rng(2024)
    J = 1_000_000
    s = np.exp(rng.normal(np.log(0.02), 0.5, J))
    tau_true, mu_true = 0.003, 0.01
    y = rng.normal(rng.normal(mu_true, tau_true, J), s)
    post = fit(MetaData.from_arrays(y, s))
    assert post.error_estimate < 1e-8
    sm = post.summary()
    assert len(sm) == 2 * J + 3 and np.isfinite(sm.to_numpy()).all()
    assert sm.loc["tau", "q2.5"] < tau_true < sm.loc["tau", "q97.5"]
    assert sm.loc["mu", "q2.5"] < mu_true < sm.loc["mu", "q97.5"]
    # quantiles are consistent with the exact CDF for a few rows
    for name in ("theta[1]", "theta[500000]", "y_pred[1000000]"):
        for col, q in (("q2.5", 0.025), ("q50", 0.5), ("q97.5", 0.975)):
            assert post.cdf(name, sm.loc[name, col]) == pytest.approx(q, abs=1e-9)


def test_sbc_exact_engine_meta_regression_5000_reps():
    """bcg's standard errors and latitude design, proper priors: the exact engine is calibrated."""
    design = datasets.load("bcg", covariates="~ ablat")
    # centre and scale latitude so a N(0, 1) slope prior is on a sensible scale
    X = design.X.copy()
    X[:, 1] = (X[:, 1] - X[:, 1].mean()) / X[:, 1].std()
    design = MetaData.from_arrays(design.y, design.se, labels=design.labels, X=X, coef_names=design.coef_names)
    res = sbc("exact", design, HalfCauchyTau(0.5), NormalBeta(0.0, 1.0), n_reps=5000, seed=11, n_jobs=2)
    assert res.passed, str(res)


def test_sbc_exact_engine_negative_control_large():
    design = datasets.load("eight_schools")
    res = sbc("exact", design, HalfNormalTau(10.0), NormalBeta(0.0, 20.0), n_reps=2000, seed=5,
              n_jobs=2, fit_tau_prior=HalfNormalTau(5.0))
    assert not res.passed
