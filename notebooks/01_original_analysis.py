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
# # 01 The original analysis, step by step
#
# The original analysis (an R script, 2025) fits the hierarchical model
#
# $$y_j \mid \theta_j \sim N(\theta_j, s_j^2), \qquad \theta_j \sim N(\mu, \tau^2), \qquad p(\mu) \propto 1,\ p(\tau) \propto 1 \ (\tau \ge 0)$$
#
# to 79 country-level treatment effects: it evaluates $p(\tau \mid y)$ on a grid, draws
# 10,000 values of $(\tau, \mu, \theta)$ from it, prints `summary(coda::mcmc(...))` of
# $\tau$, $\mu$ and the $\theta_j$, and draws three figures (the density of $\tau$, the
# conditional means of $\theta_j$ against $\tau$, and a posterior predictive histogram of one
# study's effect).
#
# Here every step is done twice: with **exact** values (quadrature over $\tau$, no Monte Carlo
# error) and with **independent draws** from the exact posterior, printed as the original
# printed them. The original's numbers are shown beside them.
#
# **`seed_countries` is SIMULATED**: a stand-in with the original's 79 standard errors and
# summary statistics, not the original data. The original's numbers are therefore only close,
# not equal, to ours. With the real file use
# `metapool.read_csv("byCountry_testscores.csv", effect="X_beta", se="X_stderr")`.

# %% tags=["parameters"]
import os

FAST = os.environ.get("METAPOOL_FAST", "0") == "1"   # small draw counts (the test suite sets it)
DRAWS = 2_000 if FAST else 10_000                       # the original's S = 10,000
SEED = 2025

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from metapool import analytic, datasets, plots
from metapool.summaries import coda_table, format_coda, format_table

pd.set_option("display.width", 120)
pd.set_option("display.float_format", "{:.5g}".format)
data = datasets.load("seed_countries")
data

# %% [markdown]
# ## The data: `summary(TE)` and `summary(StEr)`
#
# The original printed the five-number summaries and means of the effects and standard errors:
#
# ```
#      Min. 1st Qu.  Median    Mean 3rd Qu.    Max.
# -0.03993  0.00243  0.00875  0.01107  0.02189  0.06387     (TE)
#  0.00513 0.01164 0.01855 0.02294 0.02630 0.08538          (StEr)
# ```

# %%
def r_summary(x):
    q = np.quantile(x, [0, 0.25, 0.5, 0.75, 1])
    return pd.Series([q[0], q[1], q[2], np.mean(x), q[3], q[4]],
                     index=["Min.", "1st Qu.", "Median", "Mean", "3rd Qu.", "Max."])


original = pd.DataFrame({"TE (original)": [-0.03993, 0.00243, 0.00875, 0.01107, 0.02189, 0.06387],
                         "StEr (original)": [0.00513, 0.01164, 0.01855, 0.02294, 0.02630, 0.08538]},
                        index=["Min.", "1st Qu.", "Median", "Mean", "3rd Qu.", "Max."])
pd.concat([r_summary(data.y).rename("TE (simulated)"), original["TE (original)"],
           r_summary(data.se).rename("StEr (simulated)"), original["StEr (original)"]], axis=1).round(5)

# %% [markdown]
# ## The exact posterior
#
# `analytic.fit` integrates $\mu$ and the $\theta_j$ out in closed form and $\tau$ by adaptive
# quadrature (docs/MATH.md). The summary has no Monte Carlo error.

# %%
post = analytic.fit(data)
exact = post.summary()
print(format_table(exact.loc[["tau", "mu", "theta[country_01]", "theta[country_02]", "theta[country_03]",
                              "theta_new", "y_pred[country_03]"]]))
print(f"\nquadrature nodes: {post.tau_nodes.size}, change on the last refinement {post.error_estimate:.1e}")

# %% [markdown]
# ## The original's Gibbs run as independent draws
#
# The original sampled $\tau$ from its grid (`sample(tau0, S, prob = ProbTau)`), then $\mu$ and
# each $\theta_j$ given $\tau$. `post.sample` does the same from the exact posterior (no grid
# truncation), so the draws are independent and `coda`'s naive and time-series standard
# errors agree.

# %%
draws = post.sample(draws=DRAWS, chains=1, seed=SEED)
coda = coda_table(draws)
print(format_coda(coda.loc[["tau", "mu"]]))

# %% [markdown]
# ### `summary(coda::mcmc(tau))` and `summary(coda::mcmc(mu))`, beside the exact values
#
# The original printed (10,000 draws):
#
# | | Mean | SD | 2.5% | 25% | 50% | 75% | 97.5% |
# |---|---|---|---|---|---|---|---|
# | tau (original) | 0.0023566 | 0.0018199 | 0.0001 | 0.0011 | 0.0021 | 0.0036 | 0.0066 |
# | mu (original) | 0.01045 | 0.001567 | 0.007362 | 0.009396 | 0.010451 | 0.011492 | 0.013475 |

# %%
cols = ["mean", "sd", "q2.5", "q25", "q50", "q75", "q97.5"]
coda_cols = ["Mean", "SD", "2.5%", "25%", "50%", "75%", "97.5%"]
orig = pd.DataFrame([[0.0023566, 0.0018199, 0.0001, 0.0011, 0.0021, 0.0036, 0.0066],
                     [0.01045, 0.001567, 0.007362, 0.009396, 0.010451, 0.011492, 0.013475]],
                    index=["tau", "mu"], columns=cols)
side = pd.concat({"exact": exact.loc[["tau", "mu"], cols],
                  f"{DRAWS} draws": coda.loc[["tau", "mu"], coda_cols].set_axis(cols, axis=1),
                  "original (its data)": orig}).swaplevel().sort_index(level=0, sort_remaining=False)
side

# %% [markdown]
# The draws' means sit within a few Monte Carlo standard errors (`Naive SE`) of the exact means:

# %%
z = (coda["Mean"] - exact["mean"]) / coda["Naive SE"]
print(f"largest |z| over the {len(z) - 1} parameters (theta_new aside): {z.drop('theta_new').abs().max():.2f}")

# %% [markdown]
# ### `summary(coda::mcmc(THETA))`: the 79 study effects
#
# The original's first three rows were
# `[1,] 0.010373 0.003270`, `[2,] 0.010501 0.003350`, `[3,] 0.010668 0.003370` (mean, sd).

# %%
theta_rows = [f"theta[{s}]" for s in data.labels]
thetas = pd.DataFrame({"exact mean": exact.loc[theta_rows, "mean"], "exact sd": exact.loc[theta_rows, "sd"],
                       "draws mean": coda.loc[theta_rows, "Mean"], "draws sd": coda.loc[theta_rows, "SD"],
                       "y_j": data.y, "s_j": data.se})
thetas.head(10)

# %% [markdown]
# Every study is pulled strongly towards $\mu$: the posterior sd of $\tau$ is small next to the
# standard errors, so the $\theta_j$ means span a much narrower range than the $y_j$.

# %%
print(f"range of y_j: {np.ptp(data.y):.4f}; range of E[theta_j | y]: {np.ptp(thetas['exact mean']):.4f}")

# %% [markdown]
# ## The original's three figures
#
# **1. "Density tau"**: the original evaluated the density on `seq(0.0001, 0.015, 0.0005)`;
# here it is exact, with the flat prior (dashed, scaled to the plotted range) and the 95 %
# shortest interval.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
plots.plot_tau_density(post, ax=axes[0])
plots.plot_tau_density(draws, ax=axes[1])
axes[1].set_title(f"... and a kernel density of {DRAWS} draws")
plt.show()

# %% [markdown]
# **2. The conditional means** $E[\theta_j \mid \tau, y]$ (the original's commented-out loop,
# computed exactly), with $\pm 1$ sd bands and the $\tau$ posterior underneath (BDA3 Fig. 5.6).
# Only the three highest and three lowest curves are labelled.

# %%
plots.plot_shrinkage(post)
plt.show()

# %% [markdown]
# **3. The posterior predictive of study 3's effect** (`TEj`, j = 3) with its mean (red) and
# 2.5 / 97.5 % quantiles (green): exact on the left, the original's histogram of draws on the right.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
plots.plot_predictive(post, "country_03", ax=axes[0])
plots.plot_predictive(draws, "country_03", ax=axes[1])
plt.show()

# %% [markdown]
# `summary(coda::mcmc(TEj))`, the last thing the original printed:

# %%
print(format_coda(coda.loc[["y_pred[country_03]"]]))
print(format_table(exact.loc[["y_pred[country_03]"]]))

# %% [markdown]
# ## Beyond the original: forest and funnel plots
#
# 79 rows sorted by the observed effect; the shrunken intervals (blue) are all close to the
# pooled $\mu$ (diamond). The funnel plot shows the effects against their standard errors with
# the 10 / 5 / 1 % significance contours.

# %%
plots.plot_forest(post)
plt.show()
plots.plot_funnel(post)
plt.show()
