"""Session-wide NUTS fits shared by every test module.

NUTS fits cost seconds each (mostly compiling the model), so each distinct fit is made once per
test session and cached. Ask for one with the ``nuts_fit`` factory fixture::

    def test_something(nuts_fit):
        dt = nuts_fit("eight_schools")                       # non-centred, flat priors
        dt = nuts_fit("bcg", "~ ablat")                      # meta-regression
        dt = nuts_fit("eight_schools", parameterization="centered", max_retries=0,
                      target_accept=0.8)

Every fit is seeded (``FIT_SEED`` unless given), so the results are the same on every run.
The returned DataTrees are shared, so the cache guards them: their arrays are read-only (an
in-place change raises), and each time a fit is handed out its fingerprint (every group,
variable, array and attr) must equal the one taken when it was made, else the test that asks for
it fails naming the fit, instead of a later test silently seeing another test's changes (a
result that would depend on the order the tests run in). Warnings raised while fitting (e.g.
``SamplingWarning``) are kept and returned by ``nuts_fit.warnings(...)`` with the same
arguments.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any

import pytest

#: Seed of every shared fit unless a test asks for another.
FIT_SEED = 20250101


def _freeze(dt) -> None:
    """Make every array of the DataTree read-only, so an in-place change raises."""
    for node in dt.subtree:
        for var in node.variables.values():
            data = var.data
            if hasattr(data, "flags"):
                data.flags.writeable = False


def fingerprint(dt) -> str:
    """sha256 over every group's path, attrs, variable names, dims, dtypes and array bytes."""
    h = hashlib.sha256()
    for node in dt.subtree:
        h.update(repr((node.path, sorted((k, repr(v)) for k, v in node.attrs.items()))).encode())
        for name in sorted(node.variables):
            var = node.variables[name]
            h.update(repr((name, var.dims, str(var.dtype), sorted((k, repr(v)) for k, v in var.attrs.items()))).encode())
            values = var.values
            h.update(values.tobytes() if values.dtype != object else repr(values.tolist()).encode())
    return h.hexdigest()


class NutsFitCache:
    """Callable cache of :func:`metapool.models.sample` fits keyed by their arguments.

    Call as ``nuts_fit(dataset, formula=None, parameterization="noncentered", **options)``:
    ``dataset`` is a name for :func:`metapool.datasets.load`, ``formula`` its ``covariates``
    (``"~ ablat"`` for bcg), ``options`` any keyword of :func:`metapool.models.sample`
    (``tau_prior``/``beta_prior`` as spec strings, ``draws``, ``tune``, ``chains``, ``seed``,
    ``nuts_sampler``, ``target_accept``, ``max_retries``, ``x_new`` as a tuple, ``cores``).
    """

    seed: int = FIT_SEED

    def __init__(self) -> None:
        self._fits: dict[tuple, Any] = {}
        self._warnings: dict[tuple, list[warnings.WarningMessage]] = {}
        self._prints: dict[tuple, str] = {}

    @staticmethod
    def _key(dataset: str, formula: str | None, parameterization: str, options: dict[str, Any]) -> tuple:
        opts = dict(options)
        opts.setdefault("seed", FIT_SEED)
        if "x_new" in opts and opts["x_new"] is not None:
            opts["x_new"] = tuple(float(v) for v in opts["x_new"])
        return (dataset, formula, parameterization, tuple(sorted(opts.items())))

    def __call__(self, dataset: str = "eight_schools", formula: str | None = None,
                 parameterization: str = "noncentered", **options: Any):
        key = self._key(dataset, formula, parameterization, options)
        if key not in self._fits:
            import metapool.datasets
            from metapool.models import sample

            data = (metapool.datasets.load(dataset, covariates=formula) if formula
                    else metapool.datasets.load(dataset))
            opts = dict(key[3])
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self._fits[key] = sample(data, parameterization=parameterization, progressbar=False, **opts)
            self._warnings[key] = list(caught)
            _freeze(self._fits[key])
            self._prints[key] = fingerprint(self._fits[key])
        elif fingerprint(self._fits[key]) != self._prints[key]:
            raise AssertionError(f"the shared NUTS fit {key} was modified by an earlier test; the DataTrees "
                                 "nuts_fit hands out must not be changed (copy one first)")
        return self._fits[key]

    def warnings(self, dataset: str = "eight_schools", formula: str | None = None,
                 parameterization: str = "noncentered", **options: Any) -> list[warnings.WarningMessage]:
        """Warnings raised while making this fit (fits it first if needed)."""
        self(dataset, formula, parameterization, **options)
        return self._warnings[self._key(dataset, formula, parameterization, options)]


@pytest.fixture(scope="session")
def nuts_fit() -> NutsFitCache:
    """Factory of cached, seeded NUTS fits: ``nuts_fit("bcg", "~ ablat")`` (see module docstring)."""
    return NutsFitCache()


@pytest.fixture(scope="session")
def dask_cluster():
    """A Dask ``LocalCluster`` of 2 worker processes (1 thread each) on the loopback interface (its
    HTTP endpoint on a free port there), shared by the distributed-run tests, closed at the end."""
    import logging

    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                                       dashboard_address=":0", silence_logs=logging.ERROR)
    try:
        yield cluster
    finally:
        cluster.close()


# ----------------------------------------------------------------------------- bundled data
@pytest.fixture(scope="session")
def eight():
    """Eight schools (rounded), as metapool.datasets.load gives it (a test module may shadow it)."""
    import metapool.datasets

    return metapool.datasets.load("eight_schools")


@pytest.fixture(scope="session")
def bcg():
    """BCG trials, log risk ratios, intercept only."""
    import metapool.datasets

    return metapool.datasets.load("bcg")


@pytest.fixture(scope="session")
def bcg_ablat():
    """BCG trials with absolute latitude as covariate (~ ablat)."""
    import metapool.datasets

    return metapool.datasets.load("bcg", covariates="~ ablat")
