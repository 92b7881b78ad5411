"""Predicted lifetime value: the BG/NBD and Gamma-Gamma fits find the parameters that made
simulated customers, and the likelihoods match values worked out by hand."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from analytics import clv

BGNBD = (0.25, 4.0, 0.8, 2.5)  # r, α (weeks), a, b
GAMMA_GAMMA = (6.0, 4.0, 15.0)  # p, q, γ


@pytest.fixture(scope="module")
def simulated():
    rng = np.random.default_rng(2026)
    observed = rng.uniform(26, 104, 8000)  # each customer's weeks since the first purchase
    x, t_x, T = clv.simulate_bgnbd(BGNBD, observed, rng)
    repeat = x > 0
    mean_value = clv.simulate_gamma_gamma(GAMMA_GAMMA, x[repeat] + 1, rng)
    return x, t_x, T, repeat, mean_value


def close(found, true, tolerance):
    return abs(found - true) <= tolerance * true


def test_bgnbd_fit_recovers_the_simulated_parameters(simulated):
    x, t_x, T, _repeat, _m = simulated
    fit = clv.fit_bgnbd(x, t_x, T)
    r, alpha, a, b = BGNBD
    assert close(fit["r"], r, 0.15), fit
    assert close(fit["alpha"], alpha, 0.20), fit
    assert close(fit["a"], a, 0.30), fit
    assert close(fit["b"], b, 0.30), fit
    # A maximum: at least as likely as the true parameters.
    truth = clv.bgnbd_log_likelihood(BGNBD, x, t_x, T).sum()
    assert fit["log_likelihood"] >= truth


def test_gamma_gamma_fit_recovers_the_simulated_parameters(simulated):
    x, _t_x, _T, repeat, mean_value = simulated
    fit = clv.fit_gamma_gamma(x[repeat] + 1, mean_value)
    p, q, gamma = GAMMA_GAMMA
    # p and γ trade off against each other; the mean value of a purchase, γp/(q − 1), is what
    # the prediction uses and is pinned tighter.
    assert close(fit["p"], p, 0.20), fit
    assert close(fit["q"], q, 0.20), fit
    assert close(fit["gamma"], gamma, 0.25), fit
    mean = fit["gamma"] * fit["p"] / (fit["q"] - 1)
    assert close(mean, gamma * p / (q - 1), 0.05), fit
    truth = clv.gamma_gamma_log_likelihood(GAMMA_GAMMA, x[repeat] + 1, mean_value).sum()
    assert fit["log_likelihood"] >= truth


def test_bgnbd_log_likelihood_of_two_customers_by_hand():
    """r = α = a = b = 1. No repeat purchase in 1 week: A1 = A2 = 1, A3 = (1/2)^1, so L = 1/2.
    One repeat at 0.5 of 1 week: A1 = Γ(2)/Γ(1) = 1, A2 = Γ(2)Γ(2)/(Γ(1)Γ(3)) = 1/2,
    A3 = (1/2)^2 = 1/4, A4 = a/(b+x−1) · (1/1.5)^2 = 4/9, so L = 1/2 · (1/4 + 4/9) = 25/72."""
    values = clv.bgnbd_log_likelihood((1.0, 1.0, 1.0, 1.0), [0, 1], [0.0, 0.5], [1.0, 1.0])
    assert values[0] == pytest.approx(math.log(1 / 2), abs=1e-12)
    assert values[1] == pytest.approx(math.log(25 / 72), abs=1e-12)


def test_gamma_gamma_log_likelihood_by_hand():
    """p = 1, q = 2, γ = 3; two purchases averaging 4:
    Γ(4)/(Γ(2)Γ(2)) · 3^2 · 4^1 · 2^2 / (3 + 8)^4 = 6 · 9 · 4 · 4 / 14641 = 864/14641."""
    value = clv.gamma_gamma_log_likelihood((1.0, 2.0, 3.0), [2], [4.0])
    assert value[0] == pytest.approx(math.log(864 / 14641), abs=1e-12)


def test_predictions_for_a_customer_with_no_repeat_purchase_and_a_regular_one():
    model = {
        "bgnbd": dict(zip(("r", "alpha", "a", "b"), BGNBD, strict=True)),
        "gamma_gamma": dict(zip(("p", "q", "gamma"), GAMMA_GAMMA, strict=True)),
    }
    # (purchases, revenue, days since the first, days since the last purchase)
    customers = clv.Customers.from_rows([(1, 100, 70, 70), (11, 5500, 350, 7)])
    purchases, value, alive = clv.predict(model, customers, 365)
    assert alive[0] == 1.0  # BG/NBD: nobody drops out before a repeat purchase
    assert 0.9 < alive[1] < 1.0
    assert purchases[1] > 5 * purchases[0]
    # Gamma-Gamma shrinks a customer's mean towards the population's γp/(q−1) = 30.
    per_purchase = value / purchases
    p, q, gamma = GAMMA_GAMMA
    assert per_purchase[1] == pytest.approx((gamma + 11 * 500) * p / (p * 11 + q - 1))


def test_too_few_customers_make_no_model():
    customers = clv.Customers.from_rows([(2, 100, 30, 10)] * (clv.MIN_CUSTOMERS - 1))
    assert clv.fit(customers) == {}
    purchases, value, alive = clv.predict({}, customers, 365)
    assert purchases.sum() == value.sum() == alive.sum() == 0


def test_a_fit_that_ends_on_nan_parameters_is_not_taken():
    # One day's demo data (make run's seed_demo, 2026-12-05): L-BFGS-B stopped "converged"
    # with NaN parameters, which made NaN predictions and a failed refresh_analytics.
    data = json.loads((Path(__file__).parent / "data" / "lbfgs_nan_customers.json").read_text())
    customers = clv.Customers(*(np.array(data[key]) for key in ("x", "t_x", "T", "m")))
    model = clv.fit(customers)
    assert all(math.isfinite(model["bgnbd"][key]) for key in ("r", "alpha", "a", "b"))
    for figure in clv.predict(model, customers, 365):
        assert np.all(np.isfinite(figure))
    assert clv._fit(lambda _params: clv.PENALTY, np.zeros(2)) is None  # nothing computable
