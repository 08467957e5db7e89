"""A straightforward per-draw Python transcription of the original R analysis (../shared/seed).

Kept in benchmarks/ only, as the baseline the exact engine is timed against. It reproduces the
original's algorithm, including its weaknesses: tau restricted to a hand-picked grid
(0.0001 to 0.015 in steps of 0.0005), densities multiplied directly, one draw at a time.
"""

from __future__ import annotations

import numpy as np


def post_tau(tau, TE, StEr):
    Vmui = np.sum((StEr**2 + tau**2) ** -1)
    muhat = np.sum((1 / (StEr**2 + tau**2)) * TE) / np.sum(1 / (StEr**2 + tau**2))
    term = []
    for j in range(len(TE)):
        termj = (StEr[j] ** 2 + tau**2) ** (-0.5) * np.exp(-((TE[j] - muhat) ** 2) / (2 * (StEr[j] ** 2 + tau**2)))
        term.append(termj)
    return Vmui ** (-0.5) * np.prod(term)


def post_mu(tau, TE, StEr, rng):
    Vmui = np.sum((StEr**2 + tau**2) ** -1)
    muhat = np.sum((1 / (StEr**2 + tau**2)) * TE) / np.sum(1 / (StEr**2 + tau**2))
    return rng.normal(muhat, (1 / Vmui) ** 0.5)


def post_theta_j(mu, tau, j, TE, StEr, rng):
    thetahatj = (TE[j] / StEr[j] ** 2 + mu / tau**2) / (1 / StEr[j] ** 2 + 1 / tau**2)
    Vj = 1 / (1 / StEr[j] ** 2 + 1 / tau**2)
    return rng.normal(thetahatj, Vj**0.5)


def original_analysis(TE: np.ndarray, StEr: np.ndarray, S: int, seed: int = 0):
    """The seed's 'Gibbs sampler' block: grid tau, then mu and theta_j one draw at a time."""
    rng = np.random.default_rng(seed)
    tau0 = np.arange(0.0001, 0.015, 0.0005)
    prob = np.array([post_tau(t, TE, StEr) for t in tau0])
    tau = rng.choice(tau0, size=S, p=prob / prob.sum(), replace=True)
    mu = np.array([post_mu(t, TE, StEr, rng) for t in tau])
    J = len(TE)
    THETA = np.empty((S, J))
    for j in range(J):
        THETA[:, j] = [post_theta_j(mu[s], tau[s], j, TE, StEr, rng) for s in range(S)]
    return tau, mu, THETA
