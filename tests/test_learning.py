"""Learning rules on small games with known answers, and determinism given the seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abm.outcomes import verdict
from abm.scenario import VerdictParams, load_scenario
from agents.learning import EWAStrategy, LookaheadStrategy, RothErevStrategy
from experiments.runner import simulate

MENU = ("a", "b", "c")


def play(strategy, payoffs, rounds=300, noise=0.0, seed=0):
    """A bandit: choice j pays payoffs[j] (+ noise); returns final choice probabilities."""
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        j = strategy.choose(MENU)
        pay = payoffs[j] + noise * rng.standard_normal()
        strategy.update(MENU, j, strategy._scaled(pay))
    return strategy.probabilities(MENU)


@pytest.mark.parametrize("cls", [RothErevStrategy, EWAStrategy])
def test_learner_comes_to_prefer_the_dominant_action(cls):
    s = cls(rng=np.random.default_rng(1))
    p = play(s, payoffs=[0.2, 1.0, 0.0], noise=0.05)
    assert p.argmax() == 1 and p[1] > 0.7


@pytest.mark.parametrize("cls", [RothErevStrategy, EWAStrategy])
def test_learner_is_deterministic_given_its_generator(cls):
    a = play(cls(rng=np.random.default_rng(5)), payoffs=[0.5, 0.4, 0.6], noise=0.1)
    b = play(cls(rng=np.random.default_rng(5)), payoffs=[0.5, 0.4, 0.6], noise=0.1)
    c = play(cls(rng=np.random.default_rng(6)), payoffs=[0.5, 0.4, 0.6], noise=0.1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_roth_erev_update_matches_the_formula():
    s = RothErevStrategy(phi=0.1, eps=0.2, q0=1.0)
    s.update(MENU, 0, 1.0)
    # q_a = 0.9*1 + 1*(1-0.2) = 1.7; q_b = q_c = 0.9*1 + 1*0.2/2 = 1.0
    assert np.allclose(s.state[MENU], [1.7, 1.0, 1.0])


def test_ewa_update_matches_the_formula():
    s = EWAStrategy(phi=0.5, delta=0.0, rho=0.5, lam=1.0)
    s.update(MENU, 2, 1.0)
    # N_old = 1, N = 0.5*1 + 1 = 1.5; A_c = (0.5*1*0 + 1*1)/1.5; others 0 (delta = 0)
    assert np.allclose(s.state[MENU], [0.0, 0.0, 1 / 1.5])


def test_lookahead_takes_the_best_forecast():
    from agents.strategies import DisputeView, Observation

    scn = load_scenario("taiwan-crisis")
    china = scn.country("China")
    dispute = DisputeView("d", "China", "Japan", 1.0, 0, False, True)
    scores = {"licensing": 5.0, "embargo": 9.0}

    def forecast(actions, months):
        kinds = [a["type"] for a in actions]
        return max([scores.get(k, 0.0) for k in kinds] + [1.0])

    obs = Observation(
        country="China",
        month=0,
        date="2026-01",
        params=china,
        allow_coercion=True,
        budget_usd=1e9,
        price_multiple=np.ones(8),
        fill=np.ones(8),
        risk_of=np.zeros(8),
        import_share_from=np.zeros(8),
        pain=0.0,
        stockpile_target_days=0.0,
        disputes=(dispute,),
        own_measures=(),
        forecast=forecast,
    )
    actions = LookaheadStrategy(horizon=2).decide(obs)
    assert [a["type"] for a in actions] == ["embargo"]
    assert actions[0]["target"] == "Japan"


@pytest.mark.parametrize("strategy", ["roth_erev", "ewa", "lookahead"])
def test_learning_states_run_deterministically_in_the_model(strategy):
    ov = [f'countries.{c}.strategy="{strategy}"' for c in ("China", "Japan")]
    ov += ["countries.China.decision_every_months=3", "countries.Japan.decision_every_months=3"]
    scn = load_scenario("taiwan-crisis", ov, months=30, firms=100)
    a = simulate(scn, 4).timeseries
    b = simulate(scn, 4).timeseries
    pd.testing.assert_frame_equal(a, b)


def _outcomes(share, cap, rev):
    return {
        "coercer_share_mining_end": share,
        "ex_coercer_capacity_t_per_year": cap,
        "coercer_revenue_discounted_usd": rev,
    }


@pytest.mark.parametrize(
    "run, concession, expected",
    [
        (_outcomes(0.70, 100.0, 100.0), True, "succeeded"),
        (_outcomes(0.60, 100.0, 100.0), True, "mixed"),  # share fell 10 pp
        (_outcomes(0.70, 120.0, 100.0), False, "backfired"),  # capacity +20%
        (_outcomes(0.70, 100.0, 90.0), False, "backfired"),  # revenue -10%
        (_outcomes(0.69, 105.0, 97.0), False, "no_effect"),  # all under the thresholds
    ],
)
def test_verdict_thresholds(run, concession, expected):
    cf = _outcomes(0.70, 100.0, 100.0)
    p = VerdictParams(share_loss_pp=2.0, capacity_gain_share=0.1, revenue_loss_share=0.05)
    assert verdict(run, cf, concession, p) == expected
