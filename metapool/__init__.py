"""metapool: Bayesian hierarchical meta-analysis, exact (``metapool.analytic``) and by NUTS
(``metapool.models``), cross-checked by ``metapool.validation``."""

from metapool.data import MetaData
from metapool.io import read_csv
from metapool import datasets, priors

__version__ = "0.1.0"

__all__ = ["MetaData", "__version__"]
__all__ += ["read_csv", "datasets", "priors"]
