"""The model as a whole: reproducible, conserving goods and money, scaling with ``--firms``, and
able to run every built-in scenario."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from abm.constants import FirmKind
from abm.model import ConservationError, RareEarthModel
from abm.outcomes import series
from abm.scenario import builtin_names, counterfactual, load_scenario
from agents.firms import FirmAgent
from experiments.runner import run_scenario, simulate

# ----------------------------------------------------------------------------- determinism


@pytest.fixture(scope="module")
def taiwan():
    return load_scenario("taiwan-crisis", months=24, firms=150)


def test_same_scenario_and_seed_give_identical_tables(taiwan, canonical):
    a = simulate(taiwan, 3).timeseries
    b = simulate(taiwan, 3).timeseries
    assert len(a) == len(b) > 0
    assert canonical(a).equals(canonical(b))


def test_a_different_seed_gives_a_different_table(taiwan, canonical):
    a = canonical(simulate(taiwan, 3).timeseries)
    c = canonical(simulate(taiwan, 4).timeseries)
    assert not a.drop(columns="seed").equals(c.drop(columns="seed"))


def test_seed_zero_is_a_seed(taiwan, canonical):
    zero = simulate(taiwan, 0).timeseries
    one = simulate(taiwan, 1).timeseries
    assert (zero["seed"] == 0).all()
    assert not canonical(zero).drop(columns="seed").equals(canonical(one).drop(columns="seed"))
    # seed 0 given in the scenario is used too (not replaced by a default)
    scn0 = load_scenario("taiwan-crisis", months=24, firms=150, seed=0)
    model = RareEarthModel(scn0)
    assert model.seed_value == 0
    model.run()
    again = model.recorder.frame(model.dates)
    assert canonical(again).equals(canonical(zero))


def test_the_firm_population_is_drawn_from_the_models_generator(taiwan):
    a, b = RareEarthModel(taiwan, seed=8), RareEarthModel(taiwan, seed=8)
    c = RareEarthModel(taiwan, seed=9)
    for name in ("unit_cost", "capacity", "risk_sensitivity"):
        assert np.array_equal(getattr(a.firms, name), getattr(b.firms, name)), name
    assert not np.array_equal(a.firms.unit_cost, c.firms.unit_cost)


# ----------------------------------------------------------------------------- conservation


def test_a_full_default_run_of_48_months_conserves_goods_and_money():
    # settlement raises ConservationError on any leak, in the run or its counterfactual
    result = run_scenario("default", months=48)
    ts = result.timeseries
    assert ts["date"].nunique() == 48
    assert set(ts["run"].astype(str)) == {"scenario", "counterfactual"}
    for run in ("scenario", "counterfactual"):
        df = ts[ts["run"] == run]
        # every tonne exported is imported somewhere, item by item and month by month
        for good, stage in (("ndpr", "oxide"), ("heavy", "oxide"), ("ndpr", "magnet")):
            exp = series(df, "exports_t", good=good, stage=stage)
            imp = series(df, "imports_t", good=good, stage=stage)
            trade = series(df, "trade_t", good=good, stage=stage).reindex(exp.index, fill_value=0)
            assert np.allclose(exp, imp) and np.allclose(exp, trade)
        price = df[df["variable"] == "price"]["value"]
        assert np.isfinite(price).all() and (price > 0).all()


@pytest.fixture
def stepped():
    """A baseline model one month in (so every array is warm)."""
    model = RareEarthModel(load_scenario("baseline-2025", months=12, firms=120))
    model.step()
    return model


def test_a_producer_selling_stock_it_does_not_hold_is_caught(stepped):
    model = stepped
    seller = int(np.flatnonzero(model.firms.stock[: model.P, 0] > 0)[0])
    model.firms.stock[seller, 0] = -1e6  # far more than a month's output can cover
    with pytest.raises(ConservationError, match="negative stock"):
        model.step()


def test_a_manufacturer_holding_negative_stock_is_caught(stepped):
    model = stepped
    maker = model.P  # the first manufacturer
    assert model.firms.kind[maker] == FirmKind.MANUFACTURER
    model.firms.stock[maker, 4] = -1e6  # a million tonnes of NdPr oxide it does not have
    with pytest.raises(ConservationError):
        model.step()


def test_cash_out_of_nowhere_in_settlement_is_caught(stepped):
    model = stepped
    original = model._check_goods  # runs inside settlement, between the two money tallies

    def with_a_gift(*args):
        model.firms.cash[0] += 1e9
        return original(*args)

    model._check_goods = with_a_gift
    with pytest.raises(ConservationError, match="money not conserved"):
        model.step()


def test_goods_out_of_nowhere_in_settlement_are_caught(stepped):
    model = stepped
    original = model._check_goods

    def with_extra_oxide(after, expected, before):
        model.firms.stock[0, 3] += 100.0
        return original(model._holdings(), expected, before)

    model._check_goods = with_extra_oxide
    with pytest.raises(ConservationError, match="goods not conserved"):
        model.step()


@pytest.mark.parametrize(
    "field, factor, message",
    [("seller_got", 1.5, "money not conserved"), ("bought", 1.5, "goods not conserved")],
)
def test_a_market_that_does_not_balance_is_caught_in_settlement(stepped, field, factor, message):
    model = stepped
    original = model._clear_markets

    def unbalanced(orders):
        market = original(orders)
        i = 4  # NdPr oxide: traded every month
        cl = market["clearings"][i]
        assert getattr(cl, field).sum() > 0
        market["clearings"][i] = dataclasses.replace(cl, **{field: getattr(cl, field) * factor})
        return market

    model._clear_markets = unbalanced
    with pytest.raises(ConservationError, match=message):
        model.step()


# ----------------------------------------------------------------------------- --firms


def test_firm_count_changes_agents_not_aggregates():
    world = {}
    for firms in (80, 3000):
        scn = load_scenario("default", months=12, firms=firms)
        model = RareEarthModel(scn, seed=1)
        assert len(model.agents_by_type[FirmAgent]) == firms == model.firms.n
        model.run()
        df = model.recorder.frame(model.dates)
        prod = df[df["variable"] == "production_t"]
        by_stage = prod.groupby(["date", "stage"], observed=True)["value"].sum().unstack()
        world[firms] = by_stage
    small, large = world[80], world[3000]
    # synthetic firms split calibrated totals: month 1 is the same world whatever the count
    assert np.allclose(small.iloc[0], large.iloc[0], rtol=0.02)
    assert (small.iloc[0] > 0).all()
    # and the first year stays close (firm heterogeneity is drawn per firm)
    assert np.allclose(small.sum(), large.sum(), rtol=0.05)


# ----------------------------------------------------------------------------- built-ins


@pytest.mark.parametrize("name", builtin_names())
def test_every_builtin_runs_24_months(name):
    scn = load_scenario(name, months=24, firms=120)
    for variant in (scn, counterfactual(scn)):
        model = RareEarthModel(variant)
        model.run()
        assert model.month == 24 and not model.running
        assert len(model.dates) == 24 and model.dates[0] == scn.start
        assert np.isfinite(model.price).all() and (model.price > 0).all()
        assert (model.firms.stock >= 0).all()


# ----------------------------------------------------------------------------- cached read-outs


def test_policy_read_outs_follow_measures_as_they_start_and_end():
    """Read-outs kept between months (PolicyState.memo) change the moment a measure does."""
    model = RareEarthModel(load_scenario("default", months=12, firms=150, seed=3))
    model.step()
    jp = model.scenario.countries.index(model.scenario.country("Japan"))
    before = float(model.stockpile_target_days()[jp])
    model.apply_action(
        {"type": "stockpile", "id": "t-pile", "country": "Japan", "target_days": before + 100},
        "test",
    )
    assert model.stockpile_target_days()[jp] == before + 100
    model.apply_action({"type": "lift", "id": "t-pile"}, "test")
    assert model.stockpile_target_days()[jp] == before
    with pytest.raises(ValueError):  # the shared copy is read-only
        model.stockpile_target_days()[jp] = 0.0


def test_licence_delay_and_embargo_reach_the_export_rules_when_they_change():
    model = RareEarthModel(load_scenario("default", months=12, firms=150, seed=3))
    model.step()
    cn, jp, us = (
        model.scenario.countries.index(model.scenario.country(n))
        for n in ("China", "Japan", "United States")
    )
    demand = np.zeros((8, 8))
    open_access = model.policy.rule_arrays(model.month, demand)[1]
    model.apply_action(
        {
            "type": "licensing",
            "id": "t-lic",
            "exporter": "China",
            "target": "Japan",
            "approval_rate": 0.5,
            "delay_months": 2,
        },
        "test",
    )
    m0 = model.month
    assert model.policy.rule_arrays(m0, demand)[1][:, cn, jp].max() == 0.0  # in its delay
    assert model.policy.rule_arrays(m0 + 2, demand)[1][:, cn, jp].max() == 0.5  # then approved
    assert model.policy.rule_arrays(m0, demand)[1][:, cn, jp].max() == 0.0  # and back
    model.apply_action(
        {"type": "embargo", "id": "t-emb", "exporter": "China", "target": "United States"}, "test"
    )
    _q, access, leaky, _t = model.policy.rule_arrays(m0 + 2, demand)
    assert leaky[:, cn, us].all() and not leaky[:, cn, jp].any()
    model.apply_action({"type": "lift", "id": "t-lic"}, "test")
    model.apply_action({"type": "lift", "id": "t-emb"}, "test")
    assert np.array_equal(model.policy.rule_arrays(m0 + 2, demand)[1], open_access)
