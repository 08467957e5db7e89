"""Bundled example data sets: ``eight_schools``, ``bcg`` and ``seed_countries`` (SIMULATED).

Use :func:`load` for a :class:`~metapool.MetaData`, :func:`load_frame` for the raw table and
:func:`list_datasets` for the listing. The CSV files live in this package folder and are
shipped in the wheel.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from metapool.data import MetaData
from metapool.errors import InputError

__all__ = ["load", "load_frame", "list_datasets", "has_covariates", "eight_schools", "bcg", "seed_countries"]

_FILES = {
    "eight_schools": "eight_schools.csv",
    "bcg": "bcg_vaccine.csv",
    "seed_countries": "seed_countries_simulated.csv",
}


def load_frame(name: str) -> pd.DataFrame:
    """The raw bundled table of a data set, exactly as stored in its CSV file.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`'s names.

    Returns
    -------
    pandas.DataFrame
    """
    path = resources.files(__name__).joinpath(_FILES[_check_name(name)])
    with path.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


def eight_schools(unrounded: bool = False) -> MetaData:
    """Rubin's (1981) eight schools: effects of SAT coaching programmes in 8 high schools.

    Parameters
    ----------
    unrounded : bool, default False
        ``False``: the rounded effects and standard errors printed in Gelman et al. (2013),
        Table 5.2 (28, 8, -3, ...; 15, 10, 16, ...). ``True``: the unrounded values
        (28.39, 7.94, ...; 14.9, 10.2, ...) of the bayesmeta R package's ``Rubin1981``.

    Returns
    -------
    MetaData
        J = 8, labels ``A``..``H``, intercept only. The raw table (:func:`load_frame`) also
        holds ``n_students``.

    References
    ----------
    Rubin, D. B. (1981). Estimation in parallel randomized experiments. Journal of Educational
    Statistics 6(4), 377-401. Gelman, A., Carlin, J. B., Stern, H. S., Dunson, D. B., Vehtari, A.
    and Rubin, D. B. (2013). Bayesian Data Analysis, 3rd ed., Table 5.2. Unrounded values:
    Roever, C. bayesmeta R package, data ``Rubin1981``.
    """
    suffix = "_unrounded" if unrounded else ""
    return MetaData.from_dataframe(load_frame("eight_schools"), effect=f"effect{suffix}", se=f"se{suffix}",
                                   label="school", name="eight_schools" + (" (unrounded)" if unrounded else ""))


def bcg_frame() -> pd.DataFrame:
    """The BCG table with the computed log risk ratio ``yi``, its variance ``vi`` and a ``label``.

    Notes
    -----
    ``yi = log((tpos / (tpos + tneg)) / (cpos / (cpos + cneg)))`` and
    ``vi = 1/tpos - 1/(tpos + tneg) + 1/cpos - 1/(cpos + cneg)`` (metafor's ``escalc("RR")``);
    ``label`` is author and year (``"Aronson 1948"``), unique for these 13 trials.
    """
    df = load_frame("bcg")
    t_risk = df["tpos"] / (df["tpos"] + df["tneg"])
    c_risk = df["cpos"] / (df["cpos"] + df["cneg"])
    out = df.assign(
        label=df["author"] + " " + df["year"].astype(str),
        yi=np.log(t_risk / c_risk),
        vi=1 / df["tpos"] - 1 / (df["tpos"] + df["tneg"]) + 1 / df["cpos"] - 1 / (df["cpos"] + df["cneg"]),
    )
    return out


def bcg(covariates: str | Sequence[str] | None = None) -> MetaData:
    """The 13 BCG vaccine trials against tuberculosis (Colditz et al., 1994): log risk ratios.

    Parameters
    ----------
    covariates : str or list of str, optional
        A formula over ``ablat`` (absolute latitude), ``year`` and ``alloc`` (random, alternate,
        systematic allocation), e.g. ``"~ ablat"`` or ``"~ ablat + alloc"``, or a list of the
        numeric ones. Default: intercept only.

    Returns
    -------
    MetaData
        Effects ``yi`` (log risk ratio, vaccinated vs control) with sampling variances ``vi``
        (see :func:`bcg_frame`), labels such as ``"Aronson 1948"``.

    References
    ----------
    Colditz, G. A., Brewer, T. F., Berkey, C. S., Wilson, M. E., Burdick, E., Fineberg, H. V.
    and Mosteller, F. (1994). Efficacy of BCG vaccine in the prevention of tuberculosis:
    meta-analysis of the published literature. JAMA 271(9), 698-702. Data as in the metadat R
    package, ``dat.bcg``.
    """
    return MetaData.from_dataframe(bcg_frame(), effect="yi", variance="vi", label="label",
                                   covariates=covariates, name="bcg")


def seed_countries() -> MetaData:
    """SIMULATED stand-in for the original analysis's 79-country test-score effects.

    Not real data. The original file (``byCountry_testscores.csv``) is not available; this one
    is drawn by ``metapool/datasets/make_seed_countries.py`` (seeded; rerun with
    ``python -m metapool.datasets.make_seed_countries``) to match the original's printed
    summary: effects from -0.03993 to 0.06387 (median about 0.009, mean about 0.011) and
    standard errors from 0.00513 to 0.08538 (median about 0.019, mean about 0.022).

    Returns
    -------
    MetaData
        J = 79, labels ``country_01``..``country_79``, intercept only. The file keeps the
        original's column names ``X_beta`` and ``X_stderr`` (plus ``country``), so
        ``metapool.read_csv(path, effect="X_beta", se="X_stderr", label="country")`` reads it.

    References
    ----------
    The summary statistics are those printed by the original analysis, "Hierarchical
    Treatment Effects" (ARH, 2025); the values are simulated from the normal-normal model with
    mu = 0.0105 and tau = 0.0025.
    """
    return MetaData.from_dataframe(load_frame("seed_countries"), effect="X_beta", se="X_stderr",
                                   label="country", name="seed_countries (SIMULATED)")


_LOADERS: dict[str, Callable[..., MetaData]] = {
    "eight_schools": eight_schools,
    "bcg": bcg,
    "seed_countries": seed_countries,
}

_LISTING = [
    ("eight_schools", 8, "SAT coaching effects in 8 schools (rounded; unrounded=True for the unrounded values)",
     "Rubin (1981); Gelman et al., BDA3 Table 5.2; unrounded: bayesmeta Rubin1981"),
    ("bcg", 13, "BCG vaccine trials: log risk ratios from counts, covariates ablat, year, alloc",
     "Colditz et al. (1994), JAMA 271:698-702; metadat dat.bcg"),
    ("seed_countries", 79, "SIMULATED stand-in for the original 79-country test-score effects (not real data)",
     "simulated by metapool/datasets/make_seed_countries.py to match the original analysis's printed summary"),
]


def list_datasets() -> pd.DataFrame:
    """The bundled data sets.

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``J``, ``description``, ``source``; one row per data set.
    """
    return pd.DataFrame(_LISTING, columns=["name", "J", "description", "source"])


def load(name: str, **kwargs: Any) -> MetaData:
    """Load a bundled data set as :class:`~metapool.MetaData`.

    Parameters
    ----------
    name : str
        ``"eight_schools"``, ``"bcg"`` or ``"seed_countries"`` (SIMULATED).
    **kwargs
        Passed to the data set's loader: ``unrounded=True`` for :func:`eight_schools`,
        ``covariates="~ ablat"`` for :func:`bcg`.

    Returns
    -------
    MetaData

    Raises
    ------
    ValueError
        For an unknown name (the known ones are listed).
    """
    return _LOADERS[_check_name(name)](**kwargs)


def has_covariates(name: str) -> bool:
    """Whether the bundled data set ``name`` can be loaded with ``covariates=`` (a meta-regression)."""
    import inspect

    return "covariates" in inspect.signature(_LOADERS[_check_name(name)]).parameters


def _check_name(name: str) -> str:
    if name not in _FILES:
        raise InputError(f"unknown dataset {name!r}; available: {sorted(_FILES)}")
    return name
