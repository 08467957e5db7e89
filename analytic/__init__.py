"""Exact analytic engine: the posterior of the normal-normal hierarchical model by quadrature over tau.

numpy and scipy only (plus xarray for the DataTree of draws); never imports PyMC.
"""

from metapool.analytic.posterior import DEFAULT_QUANTILES, ExactPosterior, MomentWarning, check_proper, fit
from metapool.analytic.loo import ExactLOO, PsisLOO, compare_psis, loo, psis_loo
from metapool.analytic.pooling import NoPoolingPosterior, PooledPosterior, fit_pooled, fit_unpooled
from metapool.analytic.evidence import (BayesFactors, ModelAverage, bayes_factors, log_evidence,
                                        log_likelihood_tau, model_average, model_probabilities)
from metapool.analytic.sensitivity import (heterogeneity_posterior, r2_posterior, scale_sensitivity,
                                           sensitivity, transform_summary)

__all__ = ["fit", "check_proper", "ExactPosterior", "MomentWarning", "DEFAULT_QUANTILES",
           "loo", "psis_loo", "compare_psis", "ExactLOO", "PsisLOO",
           "fit_pooled", "fit_unpooled", "PooledPosterior", "NoPoolingPosterior",
           "log_evidence", "log_likelihood_tau", "bayes_factors", "BayesFactors", "model_probabilities",
           "model_average", "ModelAverage",
           "heterogeneity_posterior", "r2_posterior", "transform_summary", "sensitivity", "scale_sensitivity"]
