"""metapool: Bayesian hierarchical meta-analysis, exact (``metapool.analytic``) and by NUTS
(``metapool.models``), cross-checked by ``metapool.validation``.

Only :class:`MetaData` is imported with the package; every other public name (``read_csv``,
``datasets``, ``priors``, ``compare_models``, ``batch``) is imported on first use (PEP 562), so
``import metapool.analytic`` and the command line load neither pandas nor what else they do not use.
"""

from metapool.data import MetaData

__version__ = "0.1.0"

__all__ = ["MetaData", "__version__"]
__all__ += ["read_csv", "datasets", "priors"]
__all__ += ["compare_models", "batch"]

# name -> (module, attribute or None for the module itself)
_LAZY = {
    "read_csv": ("metapool.io", "read_csv"),
    "datasets": ("metapool.datasets", None),
    "priors": ("metapool.priors", None),
    "compare_models": ("metapool.comparison", "compare_models"),  # top layer
    "batch": ("metapool.batches", "batch"),                       # top layer
}


def __getattr__(name: str):
    """The public names of ``_LAZY``, imported on first use (``metapool.datasets``, ``metapool.read_csv``, ...)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'metapool' has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name]
    value = importlib.import_module(module)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
