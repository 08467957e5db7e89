# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 Model comparison: pooling, leave-one-out, heterogeneity, prior sensitivity
#
# On the eight schools (Rubin 1981) and the BCG trials:
#
# 1. **pooling models**: complete pooling ($\tau = 0$), no pooling ($\tau \to \infty$) and the
#    hierarchical model between them;
# 2. **leave-one-out predictive accuracy**: exact LOO (refit without each study, in closed
#    form given $\tau$) against PSIS-LOO from the posterior draws (ArviZ), and its Pareto $k$;
# 3. **Bayes factors** between pooling models;
# 4. **$I^2$**: the frequentist estimates and the posterior of $I^2$ (a transform of $\tau$);
# 5. **prior sensitivity** of $\tau$ and $\mu$.

# %% tags=["parameters"]
import os

FAST = os.environ.get("METAPOOL_FAST", "0") == "1"   # small draw counts (the test suite sets it)
DRAWS = 1000 if FAST else 4000
SEED = 3

# %%
import arviz_stats
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from metapool import analytic, datasets, heterogeneity, plots

pd.set_option("display.float_format", "{:.4g}".format)
eight = datasets.load("eight_schools")
post = analytic.fit(eight)

# %% [markdown]
# ## 1. Pooling models
#
# Given $\tau$, the study effects are normal (docs/MATH.md). Complete pooling fixes $\tau = 0$
# (every $\theta_j = \mu$); no pooling lets $\tau \to \infty$ ($\theta_j \sim N(y_j, s_j^2)$).
# The hierarchical model averages over $p(\tau \mid y)$.

# %%
tau0_mean, tau0_sd = post.conditional_theta([0.0])
table = pd.DataFrame({
    "y_j": eight.y, "s_j": eight.se,
    "complete pooling": tau0_mean[0],
    "hierarchical": [post.mean(f"theta[{s}]") for s in eight.labels],
    "hierarchical sd": [post.sd(f"theta[{s}]") for s in eight.labels],
}, index=eight.labels)
table

# %%
plots.plot_shrinkage(post)
plt.show()

# %% [markdown]
# ## 2. Leave-one-out: exact against PSIS
#
# **Exact LOO.** Without study $j$ the posterior is again a mixture over $\tau$ of normals, so
# $p(y_j \mid y_{-j}) = \sum_k w_k^{(-j)} N(y_j \mid x_j'\hat\beta_k^{(-j)}, x_j' V_k^{(-j)} x_j + \tau_k^2 + s_j^2)$
# over the quadrature nodes of the fit to $y_{-j}$: one exact fit per study.
#
# **PSIS-LOO** (Vehtari, Gelman & Gabry 2017) reweights the posterior draws by $1/p(y_j \mid \theta_j)$
# with Pareto-smoothed importance weights, from the `log_likelihood` group the draws carry.

# %%
def exact_loo(data, **fit_options):
    """log p(y_j | y_-j) for every study j, from exact fits without it."""
    out = []
    for j in range(data.J):
        keep = np.arange(data.J) != j
        fit = analytic.fit(data.subset(keep), **fit_options)
        x = data.X[j]
        m = fit.cond.beta_hat @ x
        v = np.einsum("p,kpq,q->k", x, fit.cond.beta_cov, x) + fit.tau_nodes ** 2 + data.se[j] ** 2
        dens = fit.weights @ stats.norm.pdf(data.y[j], m, np.sqrt(v))
        out.append(np.log(dens))
    return np.array(out)


draws = post.sample(draws=DRAWS, chains=2, seed=SEED)
psis = arviz_stats.loo(draws, pointwise=True)
loo_exact = exact_loo(eight)
loo_table = pd.DataFrame({"exact log p(y_j | y_-j)": loo_exact,
                          "PSIS elpd_j": np.asarray(psis.elpd_i).ravel(),
                          "Pareto k": np.asarray(psis.pareto_k).ravel()}, index=eight.labels)
loo_table.loc["total"] = [loo_exact.sum(), float(psis.elpd), np.nan]
loo_table

# %% [markdown]
# Compare the two columns: the totals differ by the PSIS error. The Pareto $k$ values of the
# eight schools sit near the 0.7 threshold: each study is the only direct information on its
# own $\theta_j$, so leaving it out moves $\theta_j$'s posterior far, and importance sampling
# from the full posterior becomes fragile. The exact values need no such diagnostic; where
# $k > 0.7$ they are the ones to trust.

# %%
plots.plot_pareto_k(np.asarray(psis.pareto_k).ravel(), eight.labels, n_draws=2 * DRAWS)
plt.show()

# %% [markdown]
# The LOO-PIT values $P(y^{rep}_j \le y_j \mid y_{-j})$, computed exactly from the same
# leave-one-out mixtures, should look uniform for a calibrated model:

# %%
def exact_loo_pit(data):
    out = []
    for j in range(data.J):
        fit = analytic.fit(data.subset(np.arange(data.J) != j))
        x = data.X[j]
        m = fit.cond.beta_hat @ x
        v = np.einsum("p,kpq,q->k", x, fit.cond.beta_cov, x) + fit.tau_nodes ** 2 + data.se[j] ** 2
        out.append(fit.weights @ stats.norm.cdf(data.y[j], m, np.sqrt(v)))
    return np.array(out)


bcg = datasets.load("bcg")
plots.plot_loo_pit(exact_loo_pit(bcg))
plt.title("LOO-PIT of the 13 BCG trials (exact)")
plt.show()

# %% [markdown]
# **TODO (model-comparison API).** `metapool.comparison` and `metapool.analytic.loo` (exact
# LOO and PSIS-LOO for both engines, with the comparison table) are being written in parallel
# and are not in this branch yet. When they land, replace `exact_loo` above by the package's
# exact LOO and add its model-comparison table (elpd differences with standard errors) for
# complete pooling, no pooling and the hierarchical model.

# %% [markdown]
# ## 3. Bayes factors
#
# **TODO (model-comparison API).** Bayes factors need the marginal likelihood $p(y)$, which is
# finite only under proper priors (the flat priors here leave it undefined up to a constant).
# `metapool.analytic.evidence` (being written in parallel) will give $\log p(y)$ exactly for
# proper priors; then compare, e.g., complete pooling against the hierarchical model with a
# half-normal prior on $\tau$ and a normal prior on $\mu$, and show how the Bayes factor
# depends on the prior scale (Lindley's paradox) while the LOO comparison above does not.

# %% [markdown]
# ## 4. $I^2$: frequentist and Bayesian
#
# $I^2 = \tau^2 / (\tau^2 + \tilde s^2)$ with the "typical" within-study variance $\tilde s^2$
# (Higgins & Thompson 2002). `metapool.heterogeneity` gives Cochran's $Q$, the DL / PM / REML
# estimates of $\tau^2$ with the Q-profile interval, and `i_squared` turns posterior draws of
# $\tau$ into draws of $I^2$.

# %%
rows = {}
for name in ("eight_schools", "bcg"):
    d = datasets.load(name)
    for method in heterogeneity.METHODS:
        h = heterogeneity.heterogeneity(d, method=method)
        rows[(name, method)] = {"Q": h.q, "p(Q)": h.q_pvalue, "tau": h.tau, "I^2 %": 100 * h.i2,
                                "I^2 low %": 100 * h.i2_ci[0], "I^2 high %": 100 * h.i2_ci[1]}
pd.DataFrame(rows).T

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for ax, name in zip(axes, ("eight_schools", "bcg")):
    d = datasets.load(name)
    tau_draws = np.asarray(analytic.fit(d).sample(draws=DRAWS, chains=1, seed=SEED)["posterior"]["tau"]).ravel()
    i2 = heterogeneity.i_squared(tau_draws, d)
    ax.hist(100 * i2, bins=np.linspace(0, 100, 51), density=True, color="C0", alpha=0.7)
    reml = 100 * heterogeneity.heterogeneity(d).i2
    ax.axvline(reml, color="k", ls="--", label=f"REML estimate {reml:.0f} %")
    ax.set(title=f"{name}: posterior of I^2 (median {100 * np.median(i2):.0f} %)", xlabel="I^2 (%)",
           ylabel="density", xlim=(0, 100))
    ax.legend(frameon=False, fontsize="small")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 5. Prior sensitivity
#
# With eight studies the data say little about $\tau$: its posterior moves with the prior,
# while $\mu$ barely does.

# %%
priors = ["flat", "uniform:0,50", "halfcauchy:5", "halfcauchy:25", "halfnormal:5", "exponential:5",
          "dumouchel"]
sens = {}
fits = {}
for spec in priors:
    fits[spec] = fit = analytic.fit(eight, tau_prior=spec)
    s = fit.summary()
    sens[spec] = {"tau mean": s.loc["tau", "mean"], "tau q50": s.loc["tau", "q50"], "tau q97.5": s.loc["tau", "q97.5"],
                  "mu mean": s.loc["mu", "mean"], "mu sd": s.loc["mu", "sd"],
                  "theta[A] mean": s.loc["theta[A]", "mean"]}
pd.DataFrame(sens).T

# %%
fig, ax = plt.subplots(figsize=(7, 4))
t = np.linspace(0, 30, 400)
for k, spec in enumerate(priors):
    ax.plot(t, fits[spec].tau_pdf(t), label=spec, color=f"C{k}")
ax.set(xlabel="tau", ylabel="posterior density", title="Eight schools: p(tau | y) under seven priors", ylim=(0, None))
ax.legend(frameon=False, fontsize="small")
plt.show()
