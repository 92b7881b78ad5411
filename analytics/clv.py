"""Predicted customer lifetime value: BG/NBD for the number of purchases and Gamma-Gamma for
the spend per purchase, both fitted by maximum likelihood.

- BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while alive a
  customer buys as a Poisson process with rate λ ~ Gamma(r, α); after each purchase they drop
  out with probability p ~ Beta(a, b). A customer is (x, t_x, T): repeat purchases after the
  first, the time of the last one and the time since the first, both from the first purchase.
- Gamma-Gamma (Fader & Hardie 2013, "The Gamma-Gamma model of monetary value"): a customer's
  purchase values are Gamma(p, ν) with ν ~ Gamma(q, γ); fitted on customers with repeat
  purchases from their number of purchases and mean value.

Times are in weeks inside the models (days ÷ 7). Floats are fine here: these are estimates;
money is rounded to two places when stored.
"""

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

WEEK = 7.0


@dataclass
class Customers:
    x: np.ndarray  # repeat purchases (purchases − 1)
    t_x: np.ndarray  # weeks from the first to the last purchase
    T: np.ndarray  # weeks from the first purchase to the end of the data
    m: np.ndarray  # mean value of a purchase

    @classmethod
    def from_rows(cls, rows):
        """From (purchases, revenue, days since first purchase, days since last purchase)."""
        if not rows:
            empty = np.zeros(0)
            return cls(empty, empty, empty, empty)
        data = np.array([[float(v) for v in row] for row in rows], dtype=float)
        purchases, revenue, first_age, last_age = data.T
        T = np.maximum(first_age, 0.0) / WEEK
        t_x = np.clip((first_age - last_age) / WEEK, 0.0, T)
        return cls(purchases - 1.0, t_x, T, revenue / purchases)

    def __len__(self):
        return len(self.x)


# --- BG/NBD ------------------------------------------------------------------------------------


def bgnbd_log_likelihood(params, x, t_x, T):
    """Each customer's log-likelihood under BG/NBD (FHL 2005, equation 6)."""
    r, alpha, a, b = params
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    ln_a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    ln_a2 = (
        special.gammaln(a + b)
        + special.gammaln(b + x)
        - special.gammaln(b)
        - special.gammaln(a + b + x)
    )
    ln_a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    safe = np.where(repeat, b + x - 1, 1.0)
    ln_a4 = np.log(a) - np.log(safe) - (r + x) * np.log(alpha + t_x)
    tail = np.where(repeat, np.logaddexp(ln_a3, ln_a4), ln_a3)
    return ln_a1 + ln_a2 + tail


PENALTY = 1e300  # what a log-likelihood that cannot be computed costs the optimiser


def _fit(negative_log_likelihood, start):
    """Minimise over the logarithms of positive parameters; the best of two methods."""
    best = None
    for method in ("L-BFGS-B", "Nelder-Mead"):
        options = {"maxiter": 5000} if method == "Nelder-Mead" else {"maxiter": 1000}
        if method == "Nelder-Mead":
            options.update(xatol=1e-7, fatol=1e-9)
        try:
            result = optimize.minimize(
                negative_log_likelihood, start, method=method, options=options
            )
        except (ValueError, FloatingPointError):
            continue
        # A method can stop "converged" on the penalty, or with parameters that are NaN: such a
        # result is no fit (L-BFGS-B did so on one day's demo data; the simplex then fitted it).
        usable = np.all(np.isfinite(result.x)) and np.isfinite(result.fun) and result.fun < PENALTY
        if usable and (best is None or result.fun < best.fun):
            best = result
        if best is not None and best.success:
            # The gradient method usually converges; the simplex is the fallback when it does
            # not (flat likelihoods, such as customers who never drop out).
            break
        start = result.x if np.all(np.isfinite(result.x)) else start
    return best


def fit_bgnbd(x, t_x, T):
    """Maximum-likelihood (r, α, a, b) and the total log-likelihood."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    # Work on a time scale where the longest history is 10: the optimiser then sees parameters
    # of similar size; α scales back at the end (λ's rate parameter has the unit of time).
    scale = 10.0 / max(float(T.max()), 1e-9)

    def negative(log_params):
        params = np.exp(log_params)
        value = -bgnbd_log_likelihood(params, x, t_x * scale, T * scale).sum()
        return value if np.isfinite(value) else PENALTY

    result = _fit(negative, np.zeros(4))
    if result is None:
        return None
    r, alpha, a, b = np.exp(result.x)
    params = (float(r), float(alpha / scale), float(a), float(b))
    return {
        "r": params[0],
        "alpha": params[1],
        "a": params[2],
        "b": params[3],
        "log_likelihood": float(bgnbd_log_likelihood(params, x, t_x, T).sum()),
        "converged": bool(result.success),
    }


def _log_odds_dead(params, x, t_x, T):
    r, alpha, a, b = params
    safe = np.where(x > 0, b + x - 1, 1.0)
    odds = np.log(a) - np.log(safe) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(x > 0, odds, -np.inf)


def bgnbd_probability_alive(params, x, t_x, T):
    """P(still a customer | x, t_x, T) (FHL 2005, equation 11)."""
    return special.expit(-_log_odds_dead(params, x, t_x, T))


def bgnbd_expected_purchases(params, t, x, t_x, T):
    """Expected purchases in the next ``t`` (FHL 2005, equation 10)."""
    r, alpha, a, b = params
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    z = t / (alpha + T + t)
    with np.errstate(all="ignore"):
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        head = (a + b + x - 1) / (a - 1)
        body = 1 - np.exp((r + x) * np.log((alpha + T) / (alpha + T + t))) * hyp
        expected = head * body * bgnbd_probability_alive(params, x, t_x, T)
    # The series can fail to converge for very frequent buyers: their expected count is then
    # their posterior rate times the time, discounted by the chance they are still customers.
    rate = (r + x) / (alpha + T) * t * bgnbd_probability_alive(params, x, t_x, T)
    bad = ~np.isfinite(expected) | (expected < 0)
    return np.where(bad, rate, expected)


# --- Gamma-Gamma -------------------------------------------------------------------------------


def gamma_gamma_log_likelihood(params, n, m):
    """Each customer's log-likelihood of the mean value ``m`` of ``n`` purchases
    (Fader & Hardie 2013, equation 4)."""
    p, q, gamma = params
    n = np.asarray(n, dtype=float)
    m = np.asarray(m, dtype=float)
    return (
        special.gammaln(p * n + q)
        - special.gammaln(p * n)
        - special.gammaln(q)
        + q * np.log(gamma)
        + (p * n - 1) * np.log(m)
        + p * n * np.log(n)
        - (p * n + q) * np.log(gamma + n * m)
    )


def fit_gamma_gamma(n, m):
    """Maximum-likelihood (p, q, γ) from customers' purchase counts and mean values."""
    n = np.asarray(n, dtype=float)
    m = np.asarray(m, dtype=float)
    scale = 1.0 / max(float(np.mean(m)), 1e-9)  # values near 1 for the optimiser; γ scales back

    def negative(log_params):
        value = -gamma_gamma_log_likelihood(np.exp(log_params), n, m * scale).sum()
        return value if np.isfinite(value) else PENALTY

    result = _fit(negative, np.zeros(3))
    if result is None:
        return None
    p, q, gamma = np.exp(result.x)
    params = (float(p), float(q), float(gamma / scale))
    return {
        "p": params[0],
        "q": params[1],
        "gamma": params[2],
        "log_likelihood": float(gamma_gamma_log_likelihood(params, n, m).sum()),
        "converged": bool(result.success),
    }


def gamma_gamma_expected_value(params, n, m):
    """Expected value of a customer's future purchase (Fader & Hardie 2013, equation 5); the
    population mean γp/(q − 1) for a customer with no purchases."""
    p, q, gamma = params
    n = np.asarray(n, dtype=float)
    m = np.asarray(m, dtype=float)
    with np.errstate(all="ignore"):
        expected = (gamma + n * m) * p / (p * n + q - 1)
    return np.where(n > 0, expected, gamma * p / (q - 1))


# --- The two together --------------------------------------------------------------------------

MIN_CUSTOMERS = 20


def fit(customers):
    """Both models on a sample, as a JSON-ready dict (empty when there is too little data)."""
    if len(customers) < MIN_CUSTOMERS or not np.any(customers.x > 0):
        return {}
    bgnbd = fit_bgnbd(customers.x, customers.t_x, customers.T)
    if bgnbd is None:
        return {}
    repeat = customers.x > 0
    model = {"bgnbd": bgnbd, "time_unit": "week"}
    if repeat.sum() >= MIN_CUSTOMERS:
        gg = fit_gamma_gamma(customers.x[repeat] + 1, customers.m[repeat])
        if gg is not None and gg["q"] > 1:
            model["gamma_gamma"] = gg
    return model


def predict(model, customers, horizon_days):
    """Per customer: expected purchases and expected value over the horizon, and P(alive).

    Without a usable Gamma-Gamma fit a customer's own mean value is used."""
    if not model or not len(customers):
        zeros = np.zeros(len(customers))
        return zeros, zeros, zeros
    b = model["bgnbd"]
    params = (b["r"], b["alpha"], b["a"], b["b"])
    t = horizon_days / WEEK
    purchases = bgnbd_expected_purchases(params, t, customers.x, customers.t_x, customers.T)
    alive = bgnbd_probability_alive(params, customers.x, customers.t_x, customers.T)
    if "gamma_gamma" in model:
        g = model["gamma_gamma"]
        value = gamma_gamma_expected_value(
            (g["p"], g["q"], g["gamma"]), customers.x + 1, customers.m
        )
    else:
        value = customers.m
    return purchases, purchases * value, alive


# --- Simulation, for tests and for checking a fit by eye ---------------------------------------


def simulate_bgnbd(params, T, rng):
    """Customers drawn from BG/NBD with known (r, α, a, b), each observed for T[i] after a first
    purchase at time 0."""
    r, alpha, a, b = params
    size = len(T)
    rates = rng.gamma(r, 1.0 / alpha, size)
    dropout = rng.beta(a, b, size)
    x = np.zeros(size)
    t_x = np.zeros(size)
    for i in range(size):
        moment = 0.0
        while True:
            moment += rng.exponential(1.0 / rates[i])
            if moment > T[i]:
                break
            x[i] += 1
            t_x[i] = moment
            if rng.random() < dropout[i]:
                break
    return x, t_x, np.asarray(T, dtype=float)


def simulate_gamma_gamma(params, n, rng):
    """Mean purchase values of customers with n[i] purchases from Gamma-Gamma (p, q, γ)."""
    p, q, gamma = params
    nu = rng.gamma(q, 1.0 / gamma, len(n))
    return np.array(
        [rng.gamma(p, 1.0 / nu[i], int(n[i])).mean() for i in range(len(n))], dtype=float
    )
