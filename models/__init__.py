"""The PyMC engine: the same hierarchical meta-analysis model, sampled with NUTS.

``build`` returns the ``pymc.Model`` (non-centred by default), ``sample`` runs NUTS (nutpie by
default) and returns an ``xarray.DataTree`` in the layout the exact engine
(``metapool.analytic``) also uses, ``summarize`` makes the shared summary table and
``divergences`` counts divergent transitions, ``predict`` gives x'beta and a new
study's effect at many covariate rows from the draws and ``run_info`` reads what a run did (divergences,
reruns, target_accept, timings) as a typed :class:`RunInfo`. ``pymc_tau`` / ``pymc_beta`` translate
the shared priors into PyMC variables. ``ModelSpec`` (from the core, ``metapool.spec``) is the
frozen description of the model both engines work from.

Names (docs/CONVENTIONS.md): dims ``study``, ``coef``; variables ``tau``, ``mu`` (intercept
only) or ``beta``, ``theta``, ``theta_new``, ``z`` / ``z_new`` (non-centred only), ``y``.
"""

from metapool.models.pymc_model import build, build_from_spec
from metapool.models.priors import pymc_beta, pymc_tau
from metapool.models.sampling import (
    DEFAULT_TARGET_ACCEPT,
    RETRY_TARGET_ACCEPT,
    CompiledSampler,
    SamplingWarning,
    clear_compiled_cache,
    compiled_cache_info,
    compiled_sampler,
    divergences,
    sample,
    sample_prior_predictive,
)
from metapool.run_info import Attempt, RunInfo, run_info
from metapool.spec import PARAMETERIZATIONS, ModelSpec, model_spec, normalize_parameterization
from metapool.models.robust import build_student_t, sample_student_t, student_t_log_likelihood
from metapool.models.summary import MCMC_COLUMNS, SUMMARY_COLUMNS, flat_draws, summarize
from metapool.models.predict import predict

__all__ = [
    "build",
    "build_from_spec",
    "pymc_tau",
    "pymc_beta",
    "sample",
    "sample_prior_predictive",
    "compiled_sampler",
    "CompiledSampler",
    "clear_compiled_cache",
    "compiled_cache_info",
    "summarize",
    "divergences",
    "run_info",
    "RunInfo",
    "Attempt",
    "flat_draws",
    "ModelSpec",
    "model_spec",
    "PARAMETERIZATIONS",
    "normalize_parameterization",
    "SamplingWarning",
    "DEFAULT_TARGET_ACCEPT",
    "RETRY_TARGET_ACCEPT",
    "SUMMARY_COLUMNS",
    "MCMC_COLUMNS",
    "build_student_t",
    "sample_student_t",
    "student_t_log_likelihood",
    "predict",
]
