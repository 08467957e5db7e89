"""metapool: Bayesian hierarchical meta-analysis, exact (``metapool.analytic``) and by NUTS
(``metapool.models``), cross-checked by ``metapool.validation``."""

from metapool.data import MetaData

__version__ = "0.1.0"

__all__ = ["MetaData", "__version__"]
