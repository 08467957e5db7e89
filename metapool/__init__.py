"""metapool: Bayesian hierarchical meta-analysis, exact (``metapool.analytic``) and by NUTS
(``metapool.models``), cross-checked by ``metapool.validation``."""

from metapool.data import MetaData
from metapool.io import read_csv
from metapool import datasets, priors

__version__ = "0.1.0"

__all__ = ["MetaData", "__version__"]
__all__ += ["read_csv", "datasets", "priors"]
__all__ += ["compare_models", "batch"]


def __getattr__(name: str):
    """``metapool.compare_models``, ``metapool.batch`` (top layer, imported on first use so the core stays light)."""
    if name == "compare_models":
        from metapool.comparison import compare_models

        return compare_models
    if name == "batch":
        from metapool.batches import batch

        return batch
    raise AttributeError(f"module 'metapool' has no attribute {name!r}")
