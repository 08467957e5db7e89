"""Bundled example data sets: ``eight_schools``, ``bcg``, ``seed_countries`` (SIMULATED), and the raw
study tables ``normand1999`` (means and SDs), ``hine1989`` (event counts) and ``molloy2014``
(correlations), whose effects :mod:`metapool.effects` computes.

Use :func:`load` for a :class:`~metapool.MetaData`, :func:`load_frame` for the raw table and
:func:`list_datasets` for the listing. The CSV files live in this package folder and are
shipped in the wheel.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from metapool import effects, io
from metapool.data import MetaData
from metapool.errors import InputError

if TYPE_CHECKING:  # pandas is imported where it is used: eight_schools and seed_countries load without it
    import pandas as pd

__all__ = ["load", "load_frame", "list_datasets", "dataset_names", "has_option", "eight_schools", "bcg",
           "seed_countries", "normand1999", "hine1989", "molloy2014"]

_FILES = {
    "eight_schools": "eight_schools.csv",
    "bcg": "bcg_vaccine.csv",
    "seed_countries": "seed_countries_simulated.csv",
    "normand1999": "normand1999.csv",
    "hine1989": "hine1989.csv",
    "molloy2014": "molloy2014.csv",
}

# The raw columns of each table by metafor's role names (metapool.effects.LAYOUTS).
_BCG_COUNTS = {"ai": "tpos", "bi": "tneg", "ci": "cpos", "di": "cneg"}
_NORMAND_MEANS = {r: r for r in effects.LAYOUTS["means"]}
_HINE_EVENTS = {r: r for r in effects.LAYOUTS["events"]}
_MOLLOY_COR = {"ri": "ri", "ni": "ni"}


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
    import pandas as pd

    path = resources.files(__name__).joinpath(_FILES[_check_name(name)])
    with path.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


def _study_columns(name: str, *, effect: str, se: str, label: str, title: str) -> MetaData:
    """A data set whose table holds effects, standard errors and labels: read by
    :func:`metapool.io.read_csv_plain` (no pandas) where the file is plain, else from :func:`load_frame`."""
    path = Path(__file__).with_name(_FILES[_check_name(name)])
    data = io.read_csv_plain(path, effect, se=se, label=label, name=title) if path.is_file() else None
    if data is None:
        data = MetaData.from_dataframe(load_frame(name), effect=effect, se=se, label=label, name=title)
    return data


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
    return _study_columns("eight_schools", effect=f"effect{suffix}", se=f"se{suffix}", label="school",
                          title="eight_schools" + (" (unrounded)" if unrounded else ""))


def bcg_frame(measure: str = "RR") -> pd.DataFrame:
    """The BCG table with the computed effect ``yi``, its variance ``vi`` and a ``label``.

    Parameters
    ----------
    measure : {"RR", "OR", "RD"}, default "RR"
        The effect-size measure, computed by :func:`metapool.effects.escalc` from the counts
        ``tpos, tneg`` (vaccinated: TB cases, no TB) and ``cpos, cneg`` (controls).

    Notes
    -----
    For RR, ``yi = log((tpos / (tpos + tneg)) / (cpos / (cpos + cneg)))`` and
    ``vi = 1/tpos - 1/(tpos + tneg) + 1/cpos - 1/(cpos + cneg)`` (metafor's ``escalc("RR")``;
    no table has a zero cell, so no continuity correction applies); ``label`` is author and
    year (``"Aronson 1948"``), unique for these 13 trials.
    """
    df = load_frame("bcg")
    df = df.assign(label=df["author"] + " " + df["year"].astype(str))
    return effects.escalc(measure, df, label="label", **_BCG_COUNTS)


def bcg(covariates: str | Sequence[str] | None = None, measure: str = "RR") -> MetaData:
    """The 13 BCG vaccine trials against tuberculosis (Colditz et al., 1994): log risk ratios.

    Parameters
    ----------
    covariates : str or list of str, optional
        A formula over ``ablat`` (absolute latitude), ``year`` and ``alloc`` (random, alternate,
        systematic allocation), e.g. ``"~ ablat"`` or ``"~ ablat + alloc"``, or a list of the
        numeric ones. Default: intercept only.
    measure : {"RR", "OR", "RD"}, default "RR"
        The effect-size measure (:func:`metapool.effects.escalc`).

    Returns
    -------
    MetaData
        Effects ``yi`` (log risk ratio, vaccinated vs control, by default) with sampling
        variances ``vi`` (see :func:`bcg_frame`), labels such as ``"Aronson 1948"``, and
        ``measure`` set. metafor's published values for trial 1 (``escalc("RR")``): yi =
        -0.8893, vi = 0.3256.

    References
    ----------
    Colditz, G. A., Brewer, T. F., Berkey, C. S., Wilson, M. E., Burdick, E., Fineberg, H. V.
    and Mosteller, F. (1994). Efficacy of BCG vaccine in the prevention of tuberculosis:
    meta-analysis of the published literature. JAMA 271(9), 698-702. Data as in the metadat R
    package, ``dat.bcg``.
    """
    df = load_frame("bcg")
    df = df.assign(label=df["author"] + " " + df["year"].astype(str))
    name = "bcg" if measure == "RR" else f"bcg ({measure})"
    return effects.to_metadata(measure, df, label="label", covariates=covariates, name=name, **_BCG_COUNTS)


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
    return _study_columns("seed_countries", effect="X_beta", se="X_stderr", label="country",
                          title="seed_countries (SIMULATED)")


def normand1999(measure: str = "MD", vtype: str = "LS") -> MetaData:
    """Length of hospital stay (days) of stroke patients in 9 studies: specialist vs routine care.

    Parameters
    ----------
    measure : {"MD", "SMD"}, default "MD"
        Raw mean difference or standardised mean difference (Hedges' g), computed by
        :func:`metapool.effects.escalc` from ``m1i, sd1i, n1i`` (specialist care) and
        ``m2i, sd2i, n2i`` (routine care).
    vtype : str, default "LS"
        metafor's variance type: ``"LS"``; ``"HO"`` (pooled SD) for MD, as in Normand (1999),
        Table VIII; ``"UB"`` for SMD.

    Returns
    -------
    MetaData
        J = 9, labels the ``source`` column (``"Edinburgh"``, ``"Orpington-Mild"``, ...),
        intercept only, ``measure`` set.

    Notes
    -----
    Published values this package is tested against: with pooled SDs the mean differences
    -20, -2, -55, -71, -4, 1, 11, -10, 7 and variances 40.59, 2.05, 15.28, 150.22, 20.19, 1.22,
    95.38, 8.03, 20.69 (Normand 1999, Table VIII; metafor's test of that table); the SMDs of the
    first four studies -0.3552, -0.3479, -2.3176, -1.8880 with variances 0.0131, 0.0645, 0.0458,
    0.1606 (metafor's escalc tests).

    References
    ----------
    Normand, S. T. (1999). Meta-analysis: Formulating, evaluating, combining, and reporting.
    Statistics in Medicine 18(3), 321-359. Data as in the metadat R package,
    ``dat.normand1999``.
    """
    return effects.to_metadata(measure, load_frame("normand1999"), label="source", vtype=vtype,
                               name=f"normand1999 ({measure})", **_NORMAND_MEANS)


def hine1989(measure: str = "RD") -> MetaData:
    """Mortality in 6 trials of prophylactic lidocaine after myocardial infarction (Hine et al., 1989).

    Parameters
    ----------
    measure : {"RD", "OR", "RR"}, default "RD"
        The effect-size measure, computed by :func:`metapool.effects.escalc` from the deaths
        ``ai`` of ``n1i`` patients given lidocaine and the deaths ``ci`` of ``n2i`` controls.

    Returns
    -------
    MetaData
        J = 6, labels the ``source`` column (``"Chopra et al."``, ...), intercept only,
        ``measure`` set.

    Notes
    -----
    Published values this package is tested against: the risk differences in percentage
    points 2.8026, 0.0000, 1.9711, 1.7961, 3.5334, 4.4031 with variances 17.7575, 37.5657,
    8.1323, 10.8998, 8.0114, 6.1320 (Normand 1999, Table III; metafor's test of that table).

    References
    ----------
    Hine, L. K., Laird, N., Hewitt, P. and Chalmers, T. C. (1989). Meta-analytic evidence
    against prophylactic use of lidocaine in acute myocardial infarction. Archives of Internal
    Medicine 149(12), 2694-2698. Normand, S. T. (1999). Statistics in Medicine 18(3), 321-359.
    Data as in the metadat R package, ``dat.hine1989``.
    """
    return effects.to_metadata(measure, load_frame("hine1989"), label="source",
                               name=f"hine1989 ({measure})", **_HINE_EVENTS)


def molloy2014(covariates: str | Sequence[str] | None = None) -> MetaData:
    """Correlations between conscientiousness and medication adherence in 16 studies (Molloy et al., 2014).

    Parameters
    ----------
    covariates : str or list of str, optional
        A formula or list over ``year``, ``meanage`` (mean age of the sample), ``quality``
        (methodological quality, 1-4) and the text columns ``controls``, ``design``,
        ``a_measure`` and ``c_measure``, e.g. ``"~ meanage"``. Default: intercept only.

    Returns
    -------
    MetaData
        Fisher's z ``atanh(ri)`` with variance ``1/(ni - 3)`` (:func:`metapool.effects.escalc`,
        measure ``ZCOR``), labels author and year (``"Axelsson et al. 2009"``), ``measure``
        ``"ZCOR"``. The raw table (:func:`load_frame`) holds ``ri`` and ``ni`` (N = 3509 in all;
        the paper's abstract reports 3,476).

    References
    ----------
    Molloy, G. J., O'Carroll, R. E. and Ferguson, E. (2014). Conscientiousness and medication
    adherence: A meta-analysis. Annals of Behavioral Medicine 47(1), 92-101. Data as in the
    metadat R package, ``dat.molloy2014``.
    """
    df = load_frame("molloy2014")
    df = df.assign(label=df["authors"] + " " + df["year"].astype(str))
    return effects.to_metadata("ZCOR", df, label="label", covariates=covariates, name="molloy2014",
                               **_MOLLOY_COR)


_LOADERS: dict[str, Callable[..., MetaData]] = {
    "eight_schools": eight_schools,
    "bcg": bcg,
    "seed_countries": seed_countries,
    "normand1999": normand1999,
    "hine1989": hine1989,
    "molloy2014": molloy2014,
}

_LISTING = [
    ("eight_schools", 8, "SAT coaching effects in 8 schools (rounded; unrounded=True for the unrounded values)",
     "Rubin (1981); Gelman et al., BDA3 Table 5.2; unrounded: bayesmeta Rubin1981"),
    ("bcg", 13, "BCG vaccine trials: log risk ratios from counts, covariates ablat, year, alloc",
     "Colditz et al. (1994), JAMA 271:698-702; metadat dat.bcg"),
    ("seed_countries", 79, "SIMULATED stand-in for the original 79-country test-score effects (not real data)",
     "simulated by metapool/datasets/make_seed_countries.py to match the original analysis's printed summary"),
    ("normand1999", 9, "Stroke-unit vs routine care, length of stay: means and SDs (measure MD or SMD)",
     "Normand (1999), Stat Med 18:321-359; metadat dat.normand1999"),
    ("hine1989", 6, "Lidocaine after myocardial infarction, deaths: event counts (measure RD, OR or RR)",
     "Hine et al. (1989), Arch Intern Med 149:2694-2698; metadat dat.hine1989"),
    ("molloy2014", 16, "Conscientiousness and medication adherence: correlations (measure ZCOR), covariates meanage, year, ...",
     "Molloy et al. (2014), Ann Behav Med 47:92-101; metadat dat.molloy2014"),
]


def list_datasets() -> pd.DataFrame:
    """The bundled data sets.

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``J``, ``description``, ``source``; one row per data set.
    """
    import pandas as pd

    return pd.DataFrame(_LISTING, columns=["name", "J", "description", "source"])


def dataset_names() -> tuple[str, ...]:
    """The bundled data sets' names, in :func:`list_datasets`'s order (without pandas).

    Returns
    -------
    tuple of str
    """
    return tuple(row[0] for row in _LISTING)


def load(name: str, **kwargs: Any) -> MetaData:
    """Load a bundled data set as :class:`~metapool.MetaData`.

    Parameters
    ----------
    name : str
        ``"eight_schools"``, ``"bcg"``, ``"seed_countries"`` (SIMULATED), ``"normand1999"``,
        ``"hine1989"`` or ``"molloy2014"``.
    **kwargs
        Passed to the data set's loader: ``unrounded=True`` for :func:`eight_schools`,
        ``covariates="~ ablat"`` for :func:`bcg` and :func:`molloy2014`, ``measure=`` for
        :func:`bcg`, :func:`normand1999` and :func:`hine1989`.

    Returns
    -------
    MetaData
        With the data set's name, labels and (when asked) design.

    Raises
    ------
    InputError
        For an unknown name (the known ones are listed).
    """
    return _LOADERS[_check_name(name)](**kwargs)


def has_option(name: str, option: str) -> bool:
    """Whether the bundled data set ``name``'s loader takes ``option`` (``"covariates"``, ``"measure"``)."""
    import inspect

    return option in inspect.signature(_LOADERS[_check_name(name)]).parameters


def _check_name(name: str) -> str:
    if name not in _FILES:
        raise InputError(f"unknown dataset {name!r}; available: {sorted(_FILES)}")
    return name
