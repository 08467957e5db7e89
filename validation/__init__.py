"""Validation of the two engines against each other and against themselves.

* :func:`compare` - NUTS draws against the exact posterior, parameter by parameter, in units of
  Monte Carlo error, plus the sampler's own diagnostics (:class:`ComparisonReport`).
* :func:`check_analytic` - the exact engine against a much finer quadrature and against its
  own independent draws (:class:`AnalyticCheckReport`).
* :func:`sbc` - simulation-based calibration of either engine (:class:`SBCResult`).

Every report has ``passed``, ``outcome`` (PASSED, FAILED, or INCONCLUSIVE when the only
failures are too few effective draws) and ``failures``: :class:`Failure` records (parameter,
check, value, limit; ``message`` is the text the report prints), decided by one verdict
(:mod:`metapool.validation.verdict`).

Figures of the comparison: :func:`metapool.plots.plot_compare_densities`.
"""

from metapool.validation.compare import ComparisonReport, compare, sampler_diagnostics
from metapool.validation.analytic_check import AnalyticCheckReport, check_analytic
from metapool.validation.sbc import SBCResult, sbc, rank_uniformity
from metapool.validation.verdict import Failure

__all__ = [
    "compare",
    "ComparisonReport",
    "sampler_diagnostics",
    "check_analytic",
    "AnalyticCheckReport",
    "sbc",
    "SBCResult",
    "rank_uniformity",
    "Failure",
]
