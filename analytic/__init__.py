"""Exact analytic engine: the posterior of the normal-normal hierarchical model by quadrature over tau.

numpy and scipy only (plus xarray for the DataTree of draws); never imports PyMC.
"""

from metapool.analytic.posterior import DEFAULT_QUANTILES, ExactPosterior, MomentWarning, check_proper, fit

__all__ = ["fit", "check_proper", "ExactPosterior", "MomentWarning", "DEFAULT_QUANTILES"]
