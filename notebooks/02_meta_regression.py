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
# # 02 Meta-regression: BCG vaccine trials, latitude and allocation
#
# The 13 BCG trials (Colditz et al. 1994; metafor's `dat.bcg`) report tuberculosis cases in
# vaccinated and control groups. The effect is the log risk ratio (`measure = "RR"`); the
# trials' absolute latitude (`ablat`) and treatment allocation (`alloc`: alternate, random,
# systematic) are the classic moderators. The model is
#
# $$y_j \sim N(\theta_j, s_j^2), \qquad \theta_j \sim N(x_j'\beta, \tau^2),$$
#
# flat priors on $\beta$ and $\tau \ge 0$, fitted exactly and with NUTS.

# %% tags=["parameters"]
import os

FAST = os.environ.get("METAPOOL_FAST", "0") == "1"   # small draw counts (the test suite sets it)
NUTS = dict(draws=300, tune=300, chains=2) if FAST else dict(draws=1000, tune=1000, chains=4)
SEED = 7

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from metapool import analytic, datasets, heterogeneity, models, plots
from metapool.summaries import format_table
from metapool.validation import compare

pd.set_option("display.float_format", "{:.4g}".format)
data = datasets.load("bcg", covariates="~ ablat + alloc")
print(data, "measure:", data.measure)
pd.DataFrame(data.X, columns=data.coef_names, index=data.labels).assign(y=data.y, se=data.se)

# %% [markdown]
# ## Exact posterior
#
# `alloc` enters as two dummy columns (alternate allocation is the reference). A new trial at
# latitude 40 with random allocation is the study we predict for (`x_new`).

# %%
x_new = {"ablat": 40, "alloc": "random"}
post = analytic.fit(data, x_new=x_new)
rows = ["tau", *[f"beta[{c}]" for c in data.coef_names], "theta_new"]
print(format_table(post.summary().loc[rows]))

# %% [markdown]
# Each degree of latitude multiplies the risk ratio by $\exp(\beta_{ablat})$:

# %%
q = post.quantile("beta[ablat]", [0.025, 0.5, 0.975])
print(f"risk ratio per 10 degrees of latitude: {np.exp(10 * q[1]):.3f} "
      f"(95% interval {np.exp(10 * q[0]):.3f} to {np.exp(10 * q[2]):.3f}); "
      f"P(beta_ablat < 0 | y) = {float(post.cdf('beta[ablat]', 0.0)):.4f}")

# %% [markdown]
# ## NUTS, checked against the exact posterior

# %%
nuts = models.sample(data, x_new=x_new, seed=SEED, progressbar=False, **NUTS)
report = compare(nuts, post)
print(report)

# %%
fig = plots.plot_compare_densities(post, nuts, var_names=["tau", "beta[ablat]", "beta[alloc[T.random]]"])
plt.show()

# %% [markdown]
# ## The bubble plot
#
# Log risk ratios against latitude, marker area proportional to precision $1/s_j^2$, the
# posterior mean of $x'\beta$ with its 95 % credible band (darker) and the 95 % prediction band
# of a new trial's $\theta$ (lighter); allocation held at its mean over the trials. Left:
# exact (mixtures over $\tau$ in closed form). Right: from the NUTS draws.

# %%
fig, axes = plt.subplots(1, 2, figsize=(14, 4.5), sharey=True)
plots.plot_regression(post, "ablat", ax=axes[0])
plots.plot_regression(nuts, "ablat", ax=axes[1])
axes[0].get_legend().remove()
axes[1].set_title("... from the NUTS draws")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Prediction for a new trial
#
# $\theta_{new} \sim N(x_{new}'\beta, \tau^2)$: the true log risk ratio of a new trial at
# latitude 40 with random allocation. Exact quantiles against the NUTS draws:

# %%
lp = plots.linear_predictor(post, np.array(post.x_new)[None, :])
exact_new = post.summary().loc["theta_new"]
nuts_new = np.asarray(nuts["posterior"]["theta_new"].values).ravel()
pd.DataFrame({
    "exact": [exact_new["mean"], exact_new["q2.5"], exact_new["q97.5"], lp["lower"][0], lp["upper"][0]],
    "NUTS": [nuts_new.mean(), *np.quantile(nuts_new, [0.025, 0.975]), np.nan, np.nan],
}, index=["mean theta_new", "2.5%", "97.5%", "x_new'beta 2.5%", "x_new'beta 97.5%"]).assign(
    risk_ratio_exact=lambda t: np.exp(t["exact"]))

# %% [markdown]
# ## Forest plot on the risk-ratio scale, sorted by latitude
#
# The axis is back-transformed (`data.measure == "RR"`): the bottom rows are the mean effect at
# `x_new` and the prediction interval for the new trial.

# %%
plots.plot_forest(post, sort="ablat")
plt.show()

# %% [markdown]
# ## How much heterogeneity do the moderators explain?
#
# The frequentist REML fit (`metapool.heterogeneity`) for comparison: $\tau^2$ with and without
# the moderators and the pseudo-$R^2$.

# %%
h = heterogeneity.heterogeneity(data, method="REML")
h0 = heterogeneity.heterogeneity(datasets.load("bcg"), method="REML")
print(f"tau^2 without moderators {h0.tau2:.4f}, with latitude and allocation {h.tau2:.4f}; "
      f"R^2 = {100 * h.r2:.0f} %; I^2 (residual) = {100 * h.i2:.0f} %")
h.coefficients.to_frame() if hasattr(h.coefficients, "to_frame") else h.coefficients
