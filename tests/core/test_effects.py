"""Effect sizes from raw tables (metapool.effects) against metafor's published values and closed forms."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import metapool
from metapool import MetaData, datasets, effects
from metapool.effects import escalc, hedges_correction, to_metadata
from metapool.errors import InputError

BCG = dict(ai="tpos", bi="tneg", ci="cpos", di="cneg")
MEANS = {r: r for r in effects.LAYOUTS["means"]}
EVENTS = {r: r for r in effects.LAYOUTS["events"]}
# metafor's tests compare against values printed to 4 decimals: allow half a unit in the last place
# (plus a hair for the printed rounding of the reference itself).
P4 = 5.1e-5


def fixed_effect(yi, vi):
    """Inverse-variance pooled estimate, its 95% CI, z and Cochran's Q (metafor's rma(method="FE"))."""
    w = 1 / vi
    est = np.sum(w * yi) / np.sum(w)
    se = 1 / math.sqrt(np.sum(w))
    return est, est - 1.959963984540054 * se, est + 1.959963984540054 * se, est / se, float(np.sum(w * (yi - est) ** 2))


def dersimonian_laird(yi, vi):
    """DerSimonian-Laird tau^2, the random-effects estimate, its CI and z, and I^2 (%)."""
    w = 1 / vi
    _, _, _, _, q = fixed_effect(yi, vi)
    k = yi.size
    tau2 = max(0.0, (q - (k - 1)) / (np.sum(w) - np.sum(w**2) / np.sum(w)))
    ws = 1 / (vi + tau2)
    est = np.sum(ws * yi) / np.sum(ws)
    se = 1 / math.sqrt(np.sum(ws))
    s2 = (k - 1) * np.sum(w) / (np.sum(w) ** 2 - np.sum(w**2))  # metafor's "typical" sampling variance
    i2 = 100 * tau2 / (tau2 + s2)
    return tau2, est, est - 1.959963984540054 * se, est + 1.959963984540054 * se, est / se, i2


# ------------------------------------------------------------------------ BCG: RR, OR, RD, all 13 trials
def test_bcg_rr_trial_one_published():
    dat = escalc("RR", datasets.load_frame("bcg"), **BCG)
    # metafor tests/testthat/test_misc_escalc.r: yi[1] = -0.8893, vi[1] = 0.3256
    assert dat["yi"][0] == pytest.approx(-0.8893, abs=P4)
    assert dat["vi"][0] == pytest.approx(0.3256, abs=P4)
    # summary(): sei, zi, ci.lb, ci.ub of trial 1
    se = math.sqrt(dat["vi"][0])
    assert se == pytest.approx(0.5706, abs=P4)
    assert dat["yi"][0] / se == pytest.approx(-1.5586, abs=P4)
    assert dat["yi"][0] - 1.959963984540054 * se == pytest.approx(-2.0077, abs=P4)
    assert dat["yi"][0] + 1.959963984540054 * se == pytest.approx(0.2290, abs=P4)
    assert dat.attrs["measure"] == "RR" and list(dat.columns[-2:]) == ["yi", "vi"]


def test_bcg_or_trial_one_published():
    dat = escalc("OR", datasets.load_frame("bcg"), **BCG)
    se = math.sqrt(dat["vi"][0])
    # metafor test_misc_escalc.r, summary() with out.names: zi, sei, ci.lb, ci.ub = -1.5708, 0.5976, -2.1100, 0.2326
    assert se == pytest.approx(0.5976, abs=P4)
    assert dat["yi"][0] / se == pytest.approx(-1.5708, abs=P4)
    assert dat["yi"][0] - 1.959963984540054 * se == pytest.approx(-2.1100, abs=P4)
    assert dat["yi"][0] + 1.959963984540054 * se == pytest.approx(0.2326, abs=P4)


# metafor tests/testthat/test_misc_metan_vs_rma.uni_with_dat.bcg.r (checked against Stata's metan):
# fixed effect (estimate, ci.lb, ci.ub, z, QE) and DerSimonian-Laird (tau2, estimate, ci.lb, ci.ub, z, I2).
BCG_POOLED = {
    "RR": ((-0.4303, -0.5097, -0.3509, -10.6247, 152.2330), (0.3088, -0.7141, -1.0644, -0.3638, -3.9952, 92.1173)),
    "OR": ((-0.4361, -0.5190, -0.3533, -10.3190, 163.1649), (0.3663, -0.7474, -1.1242, -0.3706, -3.8873, 92.6455)),
    "RD": ((-0.0009, -0.0014, -0.0005, -4.0448, 276.4737), (0.0000, -0.0071, -0.0101, -0.0040, -4.5128, 95.6596)),
}


@pytest.mark.parametrize("measure", ["RR", "OR", "RD"])
def test_bcg_all_trials_reproduce_published_pooled_results(measure):
    """Every one of the 13 effects and variances enters these sums: a wrong one moves them."""
    dat = escalc(measure, datasets.load_frame("bcg"), **BCG)
    yi, vi = dat["yi"].to_numpy(), dat["vi"].to_numpy()
    fe_ref, dl_ref = BCG_POOLED[measure]
    fe = fixed_effect(yi, vi)
    np.testing.assert_allclose(fe[:3], fe_ref[:3], atol=P4)
    np.testing.assert_allclose(fe[3:], fe_ref[3:], atol=P4 * abs(fe_ref[4]) / 10 + P4)
    dl = dersimonian_laird(yi, vi)
    np.testing.assert_allclose(dl[:5], dl_ref[:5], atol=P4 * 3)
    assert dl[5] == pytest.approx(dl_ref[5], abs=P4)
    if measure == "RR":  # exp back-transform of the pooled estimate (metafor predict(transf=exp))
        back = effects.back_transform(measure)
        np.testing.assert_allclose(back(np.array(fe[:3])), [0.6503, 0.6007, 0.7040], atol=P4)
        np.testing.assert_allclose(back(np.array(dl[1:4])), [0.4896, 0.3449, 0.6950], atol=P4)


def test_bcg_loader_uses_escalc_and_remembers_measure():
    d = datasets.load("bcg")
    ref = escalc("RR", datasets.load_frame("bcg"), **BCG)
    np.testing.assert_array_equal(d.y, ref["yi"])
    np.testing.assert_allclose(d.variance, ref["vi"], rtol=1e-15)
    assert d.measure == "RR" and d.name == "bcg"
    assert datasets.load("bcg", measure="OR").measure == "OR"
    assert datasets.load("bcg", covariates="~ ablat", measure="OR").coef_names == ("Intercept", "ablat")


# ---------------------------------------------------------------------- normand1999: MD and SMD
def test_normand_smd_published():
    dat = escalc("SMD", datasets.load_frame("normand1999"), **MEANS)
    # metafor test_misc_escalc.r, subset 1:4
    np.testing.assert_allclose(dat["yi"][:4], [-0.3552, -0.3479, -2.3176, -1.8880], atol=P4)
    np.testing.assert_allclose(dat["vi"][:4], [0.0131, 0.0645, 0.0458, 0.1606], atol=P4)


def test_normand_md_pooled_sd_matches_table_viii():
    """Normand (1999) Table VIII: mean differences with pooled-SD variances (vtype HO)."""
    d = datasets.load("normand1999", vtype="HO")
    np.testing.assert_array_equal(d.y, [-20, -2, -55, -71, -4, 1, 11, -10, 7])
    np.testing.assert_allclose(d.variance, [40.59, 2.05, 15.28, 150.22, 20.19, 1.22, 95.38, 8.03, 20.69], atol=0.0051)
    # the same through metafor's own route: sd1i = sd2i = the pooled SD, default vtype
    raw = datasets.load_frame("normand1999")
    sdp = np.sqrt(((raw.n1i - 1) * raw.sd1i**2 + (raw.n2i - 1) * raw.sd2i**2) / (raw.n1i + raw.n2i - 2))
    via = escalc("MD", raw.assign(sd1i=sdp, sd2i=sdp), **MEANS)
    np.testing.assert_allclose(via["vi"], d.variance, rtol=1e-14)


def test_normand_md_default_is_heteroscedastic():
    raw = datasets.load_frame("normand1999")
    d = datasets.load("normand1999")
    assert d.measure == "MD" and d.labels[0] == "Edinburgh" and d.J == 9
    np.testing.assert_allclose(d.variance, raw.sd1i**2 / raw.n1i + raw.sd2i**2 / raw.n2i, rtol=1e-15)
    assert d.variance[0] == pytest.approx(47**2 / 155 + 64**2 / 156, rel=1e-15)


def test_smd_closed_form_and_ub_variance():
    m1, s1, n1, m2, s2, n2 = 10.0, 2.0, 12, 8.0, 3.0, 9
    dat = escalc("SMD", m1i=[m1, 0], sd1i=[s1, 1], n1i=[n1, 4], m2i=[m2, 0], sd2i=[s2, 1], n2i=[n2, 4])
    m = n1 + n2 - 2
    sp = math.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / m)
    c = math.gamma(m / 2) / (math.sqrt(m / 2) * math.gamma((m - 1) / 2))
    g = c * (m1 - m2) / sp
    assert dat["yi"][0] == pytest.approx(g, rel=1e-13)
    assert dat["vi"][0] == pytest.approx(1 / n1 + 1 / n2 + g**2 / (2 * (n1 + n2)), rel=1e-13)
    assert dat["yi"][1] == 0.0 and dat["vi"][1] == pytest.approx(0.5, rel=1e-15)
    ub = escalc("SMD", vtype="UB", m1i=[m1], sd1i=[s1], n1i=[n1], m2i=[m2], sd2i=[s2], n2i=[n2])
    assert ub["vi"][0] == pytest.approx(1 / n1 + 1 / n2 + (1 - (m - 2) / (m * c**2)) * g**2, rel=1e-13)


def test_smd_large_groups_do_not_overflow():
    n = 10**7
    dat = escalc("SMD", m1i=[1.0], sd1i=[2.0], n1i=[n], m2i=[0.0], sd2i=[2.0], n2i=[n])
    m = 2 * n - 2
    assert dat["yi"][0] == pytest.approx(0.5 * (1 - 3 / (4 * m - 1)), rel=1e-12)
    assert np.isfinite(dat["vi"][0])


# --------------------------------------------------------------------------- Hedges' correction
def test_hedges_correction_exact_small_m():
    assert hedges_correction(2) == pytest.approx(1 / math.sqrt(math.pi), rel=1e-14)
    assert hedges_correction(3) == pytest.approx(math.sqrt(math.pi) / 2 / math.sqrt(1.5), rel=1e-14)
    # Gamma(5) / (sqrt(5) Gamma(9/2)), Gamma(9/2) = 105 sqrt(pi) / 16
    assert hedges_correction(10) == pytest.approx(384 / (105 * math.sqrt(5 * math.pi)), rel=1e-14)
    for m in range(2, 160):  # where math.gamma does not overflow
        ref = math.gamma(m / 2) / (math.sqrt(m / 2) * math.gamma((m - 1) / 2))
        assert hedges_correction(m) == pytest.approx(ref, rel=1e-12)


def test_hedges_correction_matches_approximation_for_large_m():
    """c(m) = 1 - 3/(4m) - 7/(32 m^2) + ..., so c(m) - (1 - 3/(4m - 1)) is about -1/(32 m^2)."""
    m = np.geomspace(100, 1e15, 60)
    c = hedges_correction(m)
    approx = 1 - 3 / (4 * m - 1)
    assert np.all(np.isfinite(c)) and np.all(np.diff(c) > -1e-15) and np.all(c < 1)
    assert np.all(np.abs(c - approx) <= 1 / (16 * m**2) + 2e-11)
    # the leading error term: -1/(32 m^2), seen where it is above the rounding level
    big = m[m <= 1e3]
    np.testing.assert_allclose((hedges_correction(big) - (1 - 3 / (4 * big - 1))) * 32 * big**2, -1, atol=0.02)


def test_hedges_correction_rejects_m_at_most_one():
    with pytest.raises(InputError, match="m > 1"):
        hedges_correction([5, 1])


# --------------------------------------------------------------------------------- hine1989: RD
def test_hine_rd_matches_normand_table_iii():
    d = datasets.load("hine1989")
    assert d.measure == "RD" and d.labels[0] == "Chopra et al." and d.J == 6
    np.testing.assert_allclose(d.y * 100, [2.8026, 0.0000, 1.9711, 1.7961, 3.5334, 4.4031], atol=P4)
    np.testing.assert_allclose(d.variance * 100**2, [17.7575, 37.5657, 8.1323, 10.8998, 8.0114, 6.1320], atol=P4)


def test_events_and_counts_layouts_agree():
    raw = datasets.load_frame("hine1989")
    counts = raw.assign(bi=raw.n1i - raw.ai, di=raw.n2i - raw.ci)
    for measure in ("OR", "RR", "RD"):
        a = escalc(measure, raw, **EVENTS)
        b = escalc(measure, counts, ai="ai", bi="bi", ci="ci", di="di")
        np.testing.assert_array_equal(a["yi"], b["yi"])
        np.testing.assert_array_equal(a["vi"], b["vi"])


# ----------------------------------------------------------------------------- correlations
def test_zcor_published_and_closed_form():
    # metafor test_misc_escalc.r (dat.mcdaniel1994 rows 1, 13, 33, 102): yi = 0, 0.7250, 2.6467, -0.1307
    dat = escalc("ZCOR", ri=[0.0, 0.62, 0.99, -0.13], ni=[120, 15, 6, 41])
    np.testing.assert_allclose(dat["yi"], [0.0, 0.7250, 2.6467, -0.1307], atol=P4)
    np.testing.assert_allclose(dat["vi"], [1 / 117, 1 / 12, 1 / 3, 1 / 38], rtol=1e-15)
    assert dat["yi"][1] == pytest.approx(0.5 * math.log(1.62 / 0.38), rel=1e-14)


def test_molloy_loader():
    raw = datasets.load_frame("molloy2014")
    d = datasets.load("molloy2014")
    assert d.J == 16 and d.measure == "ZCOR" and d.labels[0] == "Axelsson et al. 2009"
    assert int(raw["ni"].sum()) == 3509  # metadat's table (the paper's abstract reports N = 3,476)
    np.testing.assert_allclose(d.y, np.arctanh(raw["ri"]), rtol=1e-15)
    np.testing.assert_allclose(d.variance, 1 / (raw["ni"] - 3), rtol=1e-15)
    dm = datasets.load("molloy2014", covariates="~ meanage")
    assert dm.coef_names == ("Intercept", "meanage") and dm.measure == "ZCOR"
    np.testing.assert_array_equal(dm.X[:, 1], raw["meanage"])


# ------------------------------------------------------------------------- 2x2 closed forms
def test_odds_and_risk_ratio_of_a_hand_table():
    dat = escalc("OR", ai=[10], bi=[20], ci=[5], di=[25])
    assert dat["yi"][0] == pytest.approx(math.log(2.5), rel=1e-14)
    assert dat["vi"][0] == pytest.approx(1 / 10 + 1 / 20 + 1 / 5 + 1 / 25, rel=1e-14)
    rr = escalc("RR", ai=[10], n1i=[30], ci=[5], n2i=[30])
    assert rr["yi"][0] == pytest.approx(math.log(2.0), rel=1e-14)
    assert rr["vi"][0] == pytest.approx(1 / 10 - 1 / 30 + 1 / 5 - 1 / 30, rel=1e-14)
    rd = escalc("RD", ai=[10], n1i=[30], ci=[5], n2i=[30])
    assert rd["yi"][0] == pytest.approx(1 / 6, rel=1e-14)
    assert rd["vi"][0] == pytest.approx((1 / 3) * (2 / 3) / 30 + (1 / 6) * (5 / 6) / 30, rel=1e-14)
    ub = escalc("RD", vtype="UB", ai=[10], n1i=[30], ci=[5], n2i=[30])
    assert ub["vi"][0] == pytest.approx((1 / 3) * (2 / 3) / 29 + (1 / 6) * (5 / 6) / 29, rel=1e-14)


# ------------------------------------------------------------------------ continuity correction
ZERO = dict(ai=[0, 10], bi=[10, 20], ci=[5, 5], di=[5, 25])  # study 1 has a zero cell, study 2 none


def _or(a, b, c, d):
    return math.log(a * d / (b * c)), 1 / a + 1 / b + 1 / c + 1 / d


def test_only0_corrects_tables_with_a_zero_cell_only():
    dat = escalc("OR", **ZERO)
    y1, v1 = _or(0.5, 10.5, 5.5, 5.5)
    y2, v2 = _or(10, 20, 5, 25)
    np.testing.assert_allclose(dat["yi"], [y1, y2], rtol=1e-14)
    np.testing.assert_allclose(dat["vi"], [v1, v2], rtol=1e-14)
    rr = escalc("RR", **ZERO)
    assert rr["yi"][0] == pytest.approx(math.log((0.5 / 11) / (5.5 / 11)), rel=1e-14)
    assert rr["vi"][0] == pytest.approx(1 / 0.5 - 1 / 11 + 1 / 5.5 - 1 / 11, rel=1e-14)
    assert rr["yi"][1] == pytest.approx(math.log((10 / 30) / (5 / 30)), rel=1e-14)


def test_rd_uses_the_corrected_counts_like_metafor():
    """metafor's escalc applies add/to to RD as to OR and RR (add=0 by default only for AS, PHI, ...)."""
    dat = escalc("RD", **ZERO)
    p1, p2 = 0.5 / 11, 5.5 / 11
    assert dat["yi"][0] == pytest.approx(p1 - p2, rel=1e-14)
    assert dat["vi"][0] == pytest.approx(p1 * (1 - p1) / 11 + p2 * (1 - p2) / 11, rel=1e-14)
    none = escalc("RD", to="none", **ZERO)  # defined without correction too: 0/10 - 5/10
    assert none["yi"][0] == pytest.approx(-0.5, abs=1e-15) and none["vi"][0] == pytest.approx(0.025, rel=1e-14)


def test_to_all_and_if0all_and_add():
    every = escalc("OR", to="all", **ZERO)
    np.testing.assert_allclose(every["yi"], [_or(0.5, 10.5, 5.5, 5.5)[0], _or(10.5, 20.5, 5.5, 25.5)[0]], rtol=1e-14)
    if0 = escalc("OR", to="if0all", **ZERO)
    np.testing.assert_array_equal(if0["yi"], every["yi"])
    clean = dict(ai=[1, 10], bi=[10, 20], ci=[5, 5], di=[5, 25])
    np.testing.assert_array_equal(escalc("OR", to="if0all", **clean)["yi"], escalc("OR", to="none", **clean)["yi"])
    quarter = escalc("OR", add=0.25, **ZERO)
    assert quarter["yi"][0] == pytest.approx(_or(0.25, 10.25, 5.25, 5.25)[0], rel=1e-14)


def test_double_zero_study_kept_by_default_and_dropped_with_drop00():
    tables = dict(ai=[0, 10, 3], bi=[10, 20, 7], ci=[0, 5, 4], di=[12, 25, 6])
    dat = escalc("OR", **tables)
    assert dat["yi"][0] == pytest.approx(_or(0.5, 10.5, 0.5, 12.5)[0], rel=1e-14)
    with pytest.warns(UserWarning, match=r"drop00: left out 1 study .*\['1'\]"):
        dropped = escalc("OR", drop00=True, **tables)
    assert list(dropped.index) == [1, 2] and dropped.attrs["dropped"] == ["1"]
    np.testing.assert_array_equal(dropped["yi"], dat["yi"][1:])
    with pytest.warns(UserWarning):  # the dropped table does not switch if0all on
        if0 = escalc("OR", drop00=True, to="if0all", **tables)
    np.testing.assert_array_equal(if0["yi"], escalc("OR", to="none", ai=[10, 3], bi=[20, 7], ci=[5, 4], di=[25, 6])["yi"])
    with pytest.warns(UserWarning):
        md = to_metadata("OR", drop00=True, label=["a", "b", "c"], **tables)
    assert md.labels == ("b", "c") and md.measure == "OR"


@pytest.mark.parametrize("measure,cells,what", [
    ("OR", dict(ai=[0, 10], bi=[10, 20], ci=[5, 5], di=[5, 25]), "log odds ratio is undefined"),
    ("RR", dict(ai=[0, 10], bi=[10, 20], ci=[5, 5], di=[5, 25]), "log risk ratio is undefined"),
    ("RR", dict(ai=[10, 10], bi=[0, 20], ci=[5, 5], di=[0, 25]), "sampling variance is 0.0, not > 0"),
    ("RD", dict(ai=[0, 10], bi=[10, 20], ci=[0, 5], di=[8, 25]), "sampling variance is 0.0, not > 0"),
])
def test_undefined_effect_without_correction_raises(measure, cells, what):
    for opts in (dict(to="none"), dict(add=0)):
        with pytest.raises(InputError) as err:
            escalc(measure, label=["Smith 2001", "Jones 2003"], **cells, **opts)
        msg = str(err.value)
        assert "columns 'ai', 'bi', 'ci', 'di', study 'Smith 2001' (row 1)" in msg
        assert f"values ai={cells['ai'][0]}, bi={cells['bi'][0]}" in msg and what in msg
        assert "add=0.5" in msg and "drop00=True" in msg
    escalc(measure, **cells)  # the default correction defines it


# --------------------------------------------------------------------------------- bad input
def _raises(match: str, *args, **kwargs):
    with pytest.raises(InputError, match=match):
        escalc(*args, **kwargs)


def test_input_error_is_a_value_error():
    assert issubclass(InputError, ValueError)


def test_bad_counts_name_column_study_and_value():
    df = pd.DataFrame({"trial": ["A", "B", "C"], "ev": [3, -1, 2], "no": [10, 10, 10], "cev": [1, 2, 3], "cno": [9, 9, 9]})
    cols = dict(ai="ev", bi="no", ci="cev", di="cno")
    _raises(r"column 'ev', study 'B' \(row 2\): value -1 is negative; counts must be whole numbers >= 0",
            "OR", df, label="trial", **cols)
    _raises(r"column 'ev', study 'C' \(row 3\): value 2.5 is not a whole number",
            "OR", df.assign(ev=[3, 4, 2.5]), label="trial", **cols)
    _raises(r"column 'ev', study '2' \(row 2\): value 'n/a' is not a number",
            "OR", df.assign(ev=["3", "n/a", "2"]), **cols)
    _raises(r"column 'ev', study 'A' \(row 1\): value nan is missing",
            "RR", df.assign(ev=[np.nan, 4, 2]), label="trial", **cols)
    _raises(r"columns 'ev' and 'no', study 'B' \(row 2\): values 0 and 0: the treated group has no participants",
            "OR", df.assign(ev=[3, 0, 2], no=[10, 0, 10]), label="trial", **cols)
    _raises(r"columns 'cev' and 'cno', study 'A' \(row 1\): values 0 and 0: the control group has no participants",
            "RD", df.assign(ev=[3, 4, 2], cev=[0, 2, 3], cno=[0, 9, 9]), label="trial", **cols)


def test_bad_events_and_group_sizes():
    ev = dict(ai=[3, 12], n1i=[10, 10], ci=[1, 2], n2i=[9, 9])
    _raises(r"column 'ai', study '2' \(row 2\): value 12 is larger than the group size 10 \(column 'n1i'\)", "RR", **ev)
    _raises(r"column 'ci', study '1' \(row 1\): value 10 is larger than the group size 9 \(column 'n2i'\)",
            "OR", **{**ev, "ai": [3, 2], "ci": [10, 2]})
    _raises(r"column 'n1i', study '2' \(row 2\): value 0 is a group size of 0: the treated group has no participants",
            "RD", **{**ev, "ai": [3, 0], "n1i": [10, 0]})
    _raises(r"column 'n2i', study '1' \(row 1\): value 9.5 is not a whole number; group sizes",
            "OR", **{**ev, "ai": [3, 2], "n2i": [9.5, 9]})
    _raises(r"column 'n2i', study '1' \(row 1\): value -9 is negative", "OR", **{**ev, "ai": [3, 2], "n2i": [-9, 9]})


def test_bad_means_sds_and_group_sizes():
    ok = dict(m1i=[1.0, 2.0], sd1i=[1.0, 2.0], n1i=[10, 12], m2i=[0.0, 1.0], sd2i=[1.5, 1.0], n2i=[10, 11])
    for measure in ("MD", "SMD"):
        escalc(measure, **ok)
        _raises(r"column 'sd1i', study '2' \(row 2\): value 0.0 is not > 0; standard deviations must be positive",
                measure, **{**ok, "sd1i": [1.0, 0.0]})
        _raises(r"column 'sd2i', study '1' \(row 1\): value -1.5 is not > 0", measure, **{**ok, "sd2i": [-1.5, 1.0]})
        _raises(r"column 'n1i', study '1' \(row 1\): value 1 is below 2; group sizes \(a standard deviation needs "
                r"at least 2 observations\) must be whole numbers >= 2", measure, **{**ok, "n1i": [1, 12]})
        _raises(r"column 'n2i', study '2' \(row 2\): value 10.5 is not a whole number", measure, **{**ok, "n2i": [10, 10.5]})
        _raises(r"column 'm1i', study '1' \(row 1\): value inf is infinite", measure, **{**ok, "m1i": [np.inf, 2.0]})


def test_bad_correlations_and_sample_sizes():
    df = pd.DataFrame({"who": ["x", "y"], "r": [0.3, 0.2], "n": [50, 40]})
    to_metadata("ZCOR", df, ri="r", ni="n", label="who")
    for bad in (1.0, -1.0, 1.5):
        _raises(rf"column 'r', study 'y' \(row 2\): value {bad} is outside \(-1, 1\)", "ZCOR",
                df.assign(r=[0.3, bad]), ri="r", ni="n", label="who")
    _raises(r"column 'n', study 'x' \(row 1\): value 4 is below 5; sample sizes \(the variance 1/\(ni - 3\)",
            "ZCOR", df.assign(n=[4, 40]), ri="r", ni="n", label="who")
    _raises(r"column 'n', study 'y' \(row 2\): value 40.2 is not a whole number", "ZCOR",
            df.assign(n=[50, 40.2]), ri="r", ni="n", label="who")


def test_bad_arguments():
    cnt = dict(ai=[1, 2], bi=[3, 4], ci=[1, 2], di=[3, 4])
    _raises(r"unknown measure 'LOR'; available: OR, RR, RD, MD, SMD, ZCOR", "LOR", **cnt)
    _raises(r"measure 'OR' takes the columns ai, bi, ci, di or ai, n1i, ci, n2i; got ai, bi, ci", "OR",
            ai=[1], bi=[2], ci=[3])
    _raises(r"measure 'ZCOR' takes the columns ri, ni; got ai, bi, ci, di", "ZCOR", **cnt)
    _raises(r"to must be one of only0, all, if0all, none; got 'some'", "OR", to="some", **cnt)
    _raises(r"add must be a finite number >= 0", "OR", add=-0.5, **cnt)
    _raises(r"vtype 'HO' is not available for measure 'SMD'; available: LS, UB", "SMD", vtype="HO",
            m1i=[1], sd1i=[1], n1i=[5], m2i=[0], sd2i=[1], n2i=[5])
    _raises(r"the columns have different lengths", "OR", ai=[1, 2], bi=[3], ci=[1, 2], di=[3, 4])
    _raises(r"ai column 'events' not found; available columns: \['a', 'b'\]", "OR",
            pd.DataFrame({"a": [1], "b": [2]}), ai="events", bi="b", ci="a", di="b")
    with pytest.raises(InputError, match="covariates need a table"):
        to_metadata("OR", covariates="~ x", **cnt)


# ------------------------------------------------------------------------ MetaData.measure, transforms
def test_measure_field_is_carried_and_defaults_to_none():
    d = datasets.load("bcg", covariates="~ ablat")
    assert d.measure == "RR"
    assert d.subset(np.arange(5)).measure == "RR"
    assert d.with_effects(d.y + 1).measure == "RR"
    assert datasets.load("eight_schools").measure is None
    assert MetaData.from_arrays([1.0, 2.0], [1.0, 1.0]).measure is None
    with pytest.raises(ValueError, match="measure must be a non-empty string"):
        MetaData(y=[1.0, 2.0], se=[1.0, 1.0], labels=("a", "b"), X=np.ones((2, 1)), coef_names=("Intercept",), measure=3)


def test_back_transform_and_log_scale():
    assert effects.back_transform("OR") is np.exp and effects.back_transform("RR") is np.exp
    for m in ("RD", "MD", "SMD", "ZCOR", None):
        assert effects.back_transform(m) is None and not effects.is_log_scale(m)
    assert effects.ratio_name("OR") == "odds ratio" and effects.ratio_name("RD") is None
    with pytest.raises(InputError, match="unknown measure"):
        effects.back_transform("log")


def test_to_metadata_matches_escalc_and_from_dataframe():
    raw = datasets.load_frame("hine1989")
    d = to_metadata("OR", raw, label="source", name="hine", **EVENTS)
    tab = escalc("OR", raw, **EVENTS)
    ref = MetaData.from_dataframe(tab, effect="yi", variance="vi", label="source", name="hine")
    np.testing.assert_array_equal(d.y, ref.y)
    np.testing.assert_array_equal(d.se, ref.se)
    assert d.labels == ref.labels and d.name == "hine" and d.measure == "OR" and ref.measure is None
    arrays = to_metadata("OR", ai=raw.ai, n1i=raw.n1i, ci=raw.ci, n2i=raw.n2i)
    np.testing.assert_array_equal(arrays.y, d.y)
    assert arrays.labels == tuple("123456")


def test_escalc_keeps_the_table_and_replaces_yi_vi():
    raw = datasets.load_frame("bcg").assign(yi=0.0)
    out = escalc("RR", raw, **BCG)
    assert list(out.columns) == list(raw.columns) + ["vi"]
    assert out["yi"][0] == pytest.approx(-0.8893, abs=P4)
    assert raw["yi"][0] == 0.0  # the input is not modified
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        escalc("RR", raw, **BCG)  # nothing to warn about


def test_effects_reachable_from_package():
    import metapool.effects as mod

    assert mod is effects and metapool.errors.InputError is InputError
