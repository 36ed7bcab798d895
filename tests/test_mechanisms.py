"""Mechanisms, each read off a run against its counterfactual (same seed, coercion removed),
and the leverage verdict on crafted outcomes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from abm.model import RareEarthModel
from abm.outcomes import VERDICTS, series, verdict, verdict_parts
from abm.scenario import VerdictParams, counterfactual, load_scenario
from experiments.runner import simulate

SEED = 11
OXIDES = ("light", "ndpr", "heavy")


def pair(scn, seed=SEED):
    """Time series of a scenario and of its counterfactual, same seed."""
    return simulate(scn, seed).timeseries, simulate(counterfactual(scn), seed).timeseries


def outside_china(df, variable, stages=("concentrate", "oxide")):
    """A variable summed over countries other than China (mining and separation), by date."""
    rows = df[(df["variable"] == variable) & (df["country"] != "China")]
    rows = rows[rows["stage"].isin(list(stages))]
    return rows.groupby("date", observed=True)["value"].sum().sort_index()


# ----------------------------------------------------------------------------- (a) embargo

EMBARGO = """
[[events]]
id = "embargo-japan"
type = "embargo"
date = "2025-01"
end = "2025-12"
exporter = "China"
target = "Japan"
"""


@pytest.fixture(scope="module")
def embargo_runs(tmp_path_factory):
    path = tmp_path_factory.mktemp("embargo") / "embargo.toml"
    path.write_text('extends = "baseline-2025"\nname = "embargo"\n' + EMBARGO)
    scn = load_scenario(str(path), months=12, firms=120, seed=SEED)
    return scn, *pair(scn)


def test_embargo_cuts_chinas_exports_to_japan(embargo_runs):
    scn, run, cf = embargo_runs
    to_japan = {
        k: series(df, "trade_t", country="China", partner="Japan").sum()
        for k, df in (("run", run), ("cf", cf))
    }
    assert to_japan["cf"] > 1000.0  # Japan normally buys from China
    # only leakage gets through: the leakage share of the flow Japan would have had, which is
    # above its counterfactual flow because Japan's buyers panic and order more (hence the 2x)
    assert to_japan["run"] < 2 * scn.market.leakage_share * to_japan["cf"]
    leaked = series(run, "leaked_t", country="China", partner="Japan").sum()
    assert leaked == pytest.approx(to_japan["run"])
    # the restriction is reported as the share blocked: 1 - leakage, all year
    restr = series(run, "restriction", country="China", partner="Japan")
    assert len(restr) == 12 and np.allclose(restr, 1.0 - scn.market.leakage_share)
    assert series(cf, "restriction").empty


def test_embargo_raises_japans_oxide_prices(embargo_runs):
    _, run, cf = embargo_runs
    ratio = {}
    for good in OXIDES:
        dims = {"segment": "local", "country": "Japan", "good": good, "stage": "oxide"}
        ratio[good] = series(run, "price", **dims).mean() / series(cf, "price", **dims).mean()
    # every oxide costs Japan more than it would have; NdPr (the magnet input) by over 1%
    assert all(r > 1.0 for r in ratio.values()), ratio
    assert ratio["ndpr"] > 1.01, ratio


def test_export_quota_caps_chinas_exports(tmp_path):
    path = tmp_path / "quota.toml"
    path.write_text(
        'extends = "baseline-2025"\nname = "quota"\n[[events]]\ntype = "export_quota"\n'
        'date = "2025-01"\nexporter = "China"\nt_per_year = 6000\n'
    )
    scn = load_scenario(str(path), months=24, firms=120, seed=SEED)
    run, cf = pair(scn)
    covered = ["concentrate", "oxide"]  # an export quota's default stages
    exports = series(run, "exports_t", country="China", stage=covered)
    assert (exports <= 6000 / 12 * (1 + 1e-9)).all()
    assert series(cf, "exports_t", country="China", stage=covered).mean() > 2 * 6000 / 12
    assert (series(run, "export_quota_t", country="China") == 6000).all()


# ----------------------------------------------------------------------------- (b) backfire

SUSTAINED = """
[[events]]
id = "licensing-all"
type = "licensing"
date = "2025-01"
end = "2027-12"
exporter = "China"
target = "all"
approval_rate = 0.3
"""


@pytest.mark.parametrize("seed", [2, SEED])
def test_sustained_restriction_starts_projects_outside_china(tmp_path, seed):
    path = tmp_path / "sustained.toml"
    path.write_text('extends = "baseline-2025"\nname = "sustained"\n' + SUSTAINED)
    scn = load_scenario(str(path), months=96, firms=120, seed=seed)
    run, cf = pair(scn, seed)
    # while the licensing lasts (36 months) far more capacity is under construction outside
    # China than without it (tonne-months of projects under way, every stage: with today's
    # supply the bottleneck outside China is magnet making, so that is where plants start)
    every = ("concentrate", "oxide", "magnet")
    building = {
        k: outside_china(df, "construction_t_per_year", every).iloc[:36].sum()
        for k, df in (("run", run), ("cf", cf))
    }
    assert building["run"] > 1.5 * building["cf"]
    # when the licensing ends, capacity outside China online or being built is well above the
    # counterfactual's pipeline
    pipeline = {
        k: outside_china(df, "capacity_t_per_year", every).iloc[35]
        + outside_china(df, "construction_t_per_year", every).iloc[35]
        for k, df in (("run", run), ("cf", cf))
    }
    assert pipeline["run"] > 1.2 * pipeline["cf"]


# ----------------------------------------------------------------------------- (c) risk memory


@pytest.mark.parametrize("half_life", [6, 9])
def test_perceived_risk_halves_in_one_half_life_once_shocks_stop(tmp_path, half_life):
    path = tmp_path / "risk.toml"
    path.write_text(
        'extends = "baseline-2025"\nname = "risk"\n'
        + EMBARGO.replace('end = "2025-12"', 'end = "2025-03"')
        + f"""
[firm_behaviour]
risk_half_life_months = {half_life}
risk_spillover = 0.0     # no shocks from watching others suffer
reputation_weight = 0.0  # and none from China's reputation
"""
    )
    scn = load_scenario(str(path), months=3 + 2 * half_life + 1, firms=120, seed=SEED)
    df = simulate(scn, SEED).timeseries
    # nothing is restricted after March 2025 (no binding quota either): no new shocks
    assert series(df, "restriction")[lambda s: s > 0].index.max().strftime("%Y-%m") == "2025-03"
    assert series(df, "export_quota_t").empty
    risk = series(df, "perceived_risk", country="Japan", partner="China")
    end = 2  # March 2025, the embargo's last month
    assert risk.iloc[end] > 0.5  # Japan's buyers learnt that China is a risky supplier
    assert risk.iloc[end + half_life] / risk.iloc[end] == pytest.approx(0.5, rel=0.05)
    assert risk.iloc[end + 2 * half_life] / risk.iloc[end] == pytest.approx(0.25, rel=0.05)
    # buyers elsewhere were not shocked at all (no spillover, no reputation effect)
    assert series(df, "perceived_risk", country="Korea", partner="China").max() == 0


def test_stockpile_softens_a_cut_off(tmp_path):
    lost = {}
    for size, pile in (("big", "light = 20000, ndpr = 8000, heavy = 1000"), ("none", "")):
        path = tmp_path / f"{size}.toml"
        path.write_text(
            'extends = "baseline-2025"\nname = "pile"\n'
            + EMBARGO
            + f"[countries.Japan]\nstockpile_t = {{ {pile or 'light = 0, ndpr = 0, heavy = 0'} }}\n"
        )
        scn = load_scenario(str(path), months=12, firms=120, seed=SEED)
        lost[size] = series(simulate(scn, SEED).timeseries, "lost_output_usd", country="Japan")
    assert lost["big"].sum() < lost["none"].sum()


def test_counterfactual_of_a_scenario_without_coercion_is_the_same_run(canonical):
    scn = load_scenario("baseline-2025", months=24, firms=120)
    run, cf = pair(scn, seed=2)
    assert canonical(run).drop(columns="run").equals(canonical(cf).drop(columns="run"))


def test_coercive_measures_from_a_rule_strategy_are_absent_in_the_counterfactual():
    scn = load_scenario("taiwan-crisis", months=36, firms=120)
    model = RareEarthModel(counterfactual(scn), seed=SEED, run="counterfactual")
    model.run()
    assert not any(m.coercive for m in model.policy.measures.values())
    assert not model.policy.restriction_matrix(model.month).any()


# ----------------------------------------------------------------------------- verdict

P = VerdictParams()  # share_loss_pp 2, capacity_gain_share 0.1, revenue_loss_share 0.05


def outcomes(share=0.7, capacity=100_000.0, revenue=1e9):
    return {
        "coercer_share_mining_end": share,
        "ex_coercer_capacity_t_per_year": capacity,
        "coercer_revenue_discounted_usd": revenue,
    }


CF = outcomes()


@pytest.mark.parametrize(
    "run, concession, expected",
    [
        (outcomes(), True, "succeeded"),
        (outcomes(), False, "no_effect"),
        (outcomes(share=0.6), False, "backfired"),  # -10 pp of mining share
        (outcomes(share=0.6), True, "mixed"),
        (outcomes(capacity=150_000.0), False, "backfired"),  # +50% capacity outside
        (outcomes(revenue=0.5e9), True, "mixed"),  # -50% discounted revenue
        # small moves below every threshold are no backfire
        (outcomes(share=0.69, capacity=105_000.0, revenue=0.97e9), False, "no_effect"),
        (outcomes(share=0.69, capacity=105_000.0, revenue=0.97e9), True, "succeeded"),
        # gains for the coercer are never a backfire
        (outcomes(share=0.9, capacity=50_000.0, revenue=2e9), False, "no_effect"),
    ],
)
def test_verdict_table(run, concession, expected):
    assert verdict(run, CF, concession, P) == expected
    assert expected in VERDICTS


@pytest.mark.parametrize(
    "test, at, just_inside",
    [
        # share: 100 x (0.25 - 0.28125) = -3.125 pp exactly (binary fractions)
        ("share_loss", outcomes(share=0.25), dict(share_loss_pp=3.125)),
        # capacity: (110,000 - 100,000) / 100,000 = 0.1
        ("capacity_gain", outcomes(capacity=110_000.0), dict(capacity_gain_share=0.1)),
        # revenue: (0.95e9 - 1e9) / 1e9 = -0.05
        ("revenue_loss", outcomes(revenue=0.95e9), dict(revenue_loss_share=0.05)),
    ],
)
def test_verdict_thresholds_are_inclusive(test, at, just_inside):
    cf = outcomes(share=0.28125) if test == "share_loss" else CF
    p = VerdictParams(**just_inside)
    parts = verdict_parts(at, cf, False, p)
    assert parts["backfire_tests"][test] is True
    assert parts["verdict"] == "backfired"
    # a threshold a little higher is not reached
    key, value = next(iter(just_inside.items()))
    above = VerdictParams(**{key: value * 1.01})
    assert verdict_parts(at, cf, False, above)["backfire_tests"][test] is False
    assert verdict(at, cf, False, above) == "no_effect"
    assert verdict(at, cf, True, above) == "succeeded"
    assert verdict(at, cf, True, p) == "mixed"


def test_verdict_without_a_mining_share_uses_the_other_tests():
    nan = outcomes(share=math.nan)
    assert verdict(nan, outcomes(share=math.nan), False, P) == "no_effect"
    assert verdict(outcomes(share=math.nan, capacity=200_000.0), nan, False, P) == "backfired"
