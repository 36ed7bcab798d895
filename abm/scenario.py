"""Scenarios: frozen, typed, validated data loaded from TOML.

A scenario file is TOML. It may ``extends = "name-or-path"`` another scenario and override only
what differs: tables are merged key by key, ``events`` and ``named_firms`` lists are appended
(an event with the same ``id`` as an inherited one replaces it). Every field has a type, a range
and a unit; a value outside its range, an unknown field or a malformed file raises
:class:`ScenarioError` with a one-line message naming the field and what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from abm.constants import COUNTRIES, GOODS, ITEMS, SECTORS, STAGES


class ScenarioError(ValueError):
    """A scenario (or an override of it) is malformed; the message names the field."""


def _f(default, lo=None, hi=None, unit="", keys=None, choices=None):
    """Declare a scenario field with its range, unit and (for tables) allowed keys."""
    meta = {"lo": lo, "hi": hi, "unit": unit, "keys": keys, "choices": choices}
    if isinstance(default, dict | list):
        return field(default_factory=lambda d=default: copy.deepcopy(d), metadata=meta)
    return field(default=default, metadata=meta)


def _goods(light, ndpr, heavy):
    return {"light": light, "ndpr": ndpr, "heavy": heavy}


ITEM_KEYS = tuple(f"{g}_{s}" for g, s in ITEMS)
STRATEGIES = ("scripted", "rule", "roth_erev", "ewa", "lookahead")
"""Strategies a state may use (agents/strategies.py, agents/learning.py)."""


@dataclass(frozen=True)
class MarketParams:
    """How prices form and goods move between countries."""

    price_adjust_speed: float = _f(0.2, 0.0, 5.0, "log-price change per unit excess demand")
    arbitrage_strength: float = _f(0.85, 0.0, 1.0, "share of an open price gap closed per month")
    max_monthly_log_change: float = _f(0.25, 0.01, 3.0, "cap on |log price change| per month")
    transport_cost_share: float = _f(0.03, 0.0, 1.0, "share of price lost to freight abroad")
    leakage_share: float = _f(0.1, 0.0, 1.0, "share of embargoed flow that leaks via others")
    leakage_premium: float = _f(0.3, 0.0, 5.0, "extra price share paid on leaked tonnes")
    home_bias: float = _f(
        1.0, 0.0, 1.0, "share of home demand served from home supply first in a world shortage"
    )
    stockpile_buy_share: float = _f(0.05, 0.0, 1.0, "most a stockpile adds to monthly demand")
    trade_stickiness: float = _f(0.9, 0.0, 1.0, "weight of last month's supplier shares")
    risk_avoidance: float = _f(0.8, 0.0, 1.0, "how far perceived risk turns buyers away")
    demand_elasticity: dict = _f(_goods(0.2, 0.12, 0.08), 0.0, 3.0, "-dlnQ/dlnP", keys=GOODS)
    prices_usd_per_kg: dict = _f(
        {
            "light_concentrate": 2.0,
            "ndpr_concentrate": 8.0,
            "heavy_concentrate": 50.0,
            "light_oxide": 5.0,
            "ndpr_oxide": 16.0,
            "heavy_oxide": 110.0,
            "ndpr_magnet": 35.0,
            "heavy_magnet": 50.0,
        },
        0.01,
        100000.0,
        "US$/kg at start",
        keys=ITEM_KEYS,
    )
    magnet_ndpr_t_per_t: dict = _f(
        {"ndpr_magnet": 0.30, "heavy_magnet": 0.28},
        0.0,
        1.0,
        "t NdPr oxide per t magnet",
        keys=("ndpr_magnet", "heavy_magnet"),
    )
    magnet_heavy_t_per_t: dict = _f(
        {"ndpr_magnet": 0.004, "heavy_magnet": 0.04},
        0.0,
        1.0,
        "t Dy/Tb oxide per t magnet",
        keys=("ndpr_magnet", "heavy_magnet"),
    )
    separation_yield: float = _f(0.95, 0.5, 1.0, "t oxide per t REO concentrate")
    premium_decay: float = _f(0.05, 0.0, 1.0, "share of a scarcity premium that fades per month")
    concentrate_premium_decay: float = _f(
        -1.0, -1.0, 1.0, "share of concentrate's premium that fades per month; -1 = premium_decay"
    )
    price_floor_share: float = _f(0.1, 0.0, 1.0, "lowest price as a share of the start price")
    choke_price_multiple: float = _f(50.0, 1.5, 1e4, "price multiple at which end use stops")


@dataclass(frozen=True)
class FirmParams:
    """Bounded-rational firm behaviour, shared by all firms (heterogeneity by draw)."""

    expectation_speed: float = _f(0.3, 0.0, 1.0, "weight of the new price in expectations")
    risk_half_life_months: float = _f(18.0, 0.5, 600.0, "months")
    risk_spillover: float = _f(0.35, 0.0, 1.0, "share of a shock to others felt as own risk")
    risk_shock: float = _f(0.8, 0.0, 1.0, "risk added by a month of restriction suffered")
    reputation_weight: float = _f(0.25, 0.0, 1.0, "risk of a coercer raised for all buyers")
    binding_quota_risk: float = _f(
        0.5, 0.0, 1.0, "restriction felt on every route out of a country whose export quota binds"
    )
    inventory_base_months: float = _f(2.0, 0.0, 24.0, "months of use")
    inventory_risk_months: float = _f(12.0, 0.0, 36.0, "extra months of use at risk 1")
    inventory_adjust_months: float = _f(4.0, 1.0, 36.0, "months to close an inventory gap")
    producer_stock_months: float = _f(1.0, 0.0, 12.0, "months of output a producer holds")
    idle_after_loss_months: int = _f(9, 1, 120, "months")
    restart_cost_share: float = _f(0.05, 0.0, 1.0, "share of annual capacity value")
    bankrupt_after_loss_months: int = _f(48, 1, 240, "months of losses with negative cash")
    bankrupt_debt_years: float = _f(
        0.5, 0.0, 10.0, "debt, in years of output at cost, that ends a firm"
    )
    investment_hurdle: float = _f(0.35, 0.0, 5.0, "expected margin over full cost")
    project_start_prob: float = _f(0.04, 0.0, 1.0, "per month when profitable")
    expansion_share: float = _f(0.3, 0.01, 5.0, "project size as share of capacity")
    pipeline_limit_share: float = _f(
        0.0, 0.0, 100.0, "stage pipeline/capacity at which no project starts; 0 = no brake"
    )
    expansion_utilisation: float = _f(0.85, 0.0, 1.0, "utilisation needed to invest")
    abandon_after_months: int = _f(36, 1, 240, "months of expected loss")
    ramp_up_months: int = _f(24, 0, 120, "months for new capacity to reach full output")
    learning_rate: float = _f(
        0.0, 0.0, 0.5, "entrants' unit-cost cut per doubling of cumulative output; 0 = off"
    )
    learning_floor_share: float = _f(
        0.4, 0.05, 1.0, "lowest entrant unit cost, as a share of its cost at first output"
    )
    heterogeneity: float = _f(0.2, 0.0, 2.0, "lognormal sigma of firm costs")
    substitution_rate_per_month: float = _f(0.01, 0.0, 0.2, "max intensity cut per month")
    substitution_rate_by_group: dict = _f(
        _goods(-1.0, -1.0, -1.0),
        -1.0,
        0.2,
        "max intensity cut per month per element group; -1 = substitution_rate_per_month",
        keys=GOODS,
    )
    substitution_price_trigger: float = _f(1.8, 1.0, 100.0, "price multiple that starts R&D")
    substitution_floor: float = _f(0.55, 0.0, 1.0, "lowest reachable intensity index")
    substitution_floor_by_group: dict = _f(
        _goods(-1.0, -1.0, -1.0),
        -1.0,
        1.0,
        "lowest reachable intensity index per element group; -1 = substitution_floor",
        keys=GOODS,
    )
    heavy_thrift_in_magnets: bool = _f(
        False,
        unit="Dy/Tb thrifting cuts the Dy/Tb per high-temperature magnet, not the magnets bought",
    )
    rd_programme_share: float = _f(
        0.03, 1e-6, 1.0, "share of a year's RE-using output that buys a substitution_rd's full cut"
    )
    recycling_collection_rate: float = _f(0.05, 0.0, 1.0, "share of end-of-life REO collectable")
    recycling_growth_per_month: float = _f(0.01, 0.0, 0.5, "capacity growth when profitable")
    product_life_years: float = _f(12.0, 1.0, 40.0, "years from use to end of life")
    capex_usd_per_t_per_year: dict = _f(
        {"miner": 40000.0, "separator": 30000.0, "magnet_maker": 15000.0, "recycler": 20000.0},
        0.0,
        1e7,
        "US$ per t/yr of capacity",
        keys=("miner", "separator", "magnet_maker", "recycler"),
    )
    build_months: dict = _f(
        {"miner": 48, "separator": 36, "magnet_maker": 24, "recycler": 18},
        1,
        240,
        "months from permit to output",
        keys=("miner", "separator", "magnet_maker", "recycler"),
    )


@dataclass(frozen=True)
class CountryParams:
    """A state, its industry and its deposits."""

    name: str = _f("", choices=COUNTRIES)
    strategy: str = _f("scripted", choices=STRATEGIES)
    budget_usd: float = _f(0.0, 0.0, 1e13, "US$")
    objectives: dict = _f(
        {"revenue": 1.0, "industry": 1.0, "security": 1.0, "political": 1.0, "budget": 0.2},
        0.0,
        100.0,
        "weight",
        keys=("revenue", "industry", "security", "political", "budget"),
    )
    resolve: float = _f(1.0, 0.0, 100.0, "pain share of output the state bears before it concedes")
    permit_months: int = _f(24, 0, 240, "months")
    mine_build_months: int = _f(0, 0, 240, "months to build a mine here; 0 = the default")
    must_run_share: float = _f(0.0, 0.0, 1.0, "run-rate floor of state-backed mines")
    state_capacity_headroom: float = _f(
        -1.0,
        -1.0,
        1.0,
        "state-backed mines expand to the production quota times 1 + this; -1 = off",
    )
    state_expansion_months: int = _f(12, 1, 240, "months from decision to output, state expansions")
    state_separation_headroom: float = _f(
        -1.0,
        -1.0,
        1.0,
        "state-backed separators expand to the ore to separate (mining quota plus concentrate"
        " imports) times 1 + this; -1 = off",
    )
    demand_t_per_year: dict = _f(_goods(0.0, 0.0, 0.0), 0.0, 1e7, "t REO/yr end use", keys=GOODS)
    demand_growth_per_year: float = _f(0.04, -0.5, 1.0, "share per year")
    demand_growth_offset_per_year: dict = _f(
        _goods(0.0, 0.0, 0.0), -0.5, 0.5, "added to demand_growth_per_year, per group", keys=GOODS
    )
    magnet_share: dict = _f(
        {"ndpr": 0.8, "heavy": 0.9}, 0.0, 1.0, "share of use in magnets", keys=("ndpr", "heavy")
    )
    sector_shares: dict = _f(
        {"automotive": 0.3, "electronics": 0.25, "wind": 0.1, "defence": 0.05, "industrial": 0.3},
        0.0,
        1.0,
        "share of use",
        keys=SECTORS,
    )
    value_at_risk_usd_per_kg: dict = _f(
        {
            "automotive": 700.0,
            "electronics": 500.0,
            "wind": 300.0,
            "defence": 2000.0,
            "industrial": 150.0,
        },
        0.0,
        1e6,
        "US$ output per kg REO",
        keys=SECTORS,
    )
    mine_capacity_t_per_year: float = _f(0.0, 0.0, 1e7, "t REO/yr")
    ore_basket: dict = _f(_goods(0.78, 0.2, 0.02), 0.0, 1.0, "share of REO", keys=GOODS)
    mine_cost_usd_per_kg: float = _f(3.0, 0.01, 10000.0, "US$/kg REO")
    separation_capacity_t_per_year: float = _f(0.0, 0.0, 1e7, "t REO/yr")
    separation_cost_usd_per_kg: float = _f(4.0, 0.01, 10000.0, "US$/kg REO")
    magnet_capacity_t_per_year: float = _f(0.0, 0.0, 1e7, "t magnet/yr")
    magnet_cost_usd_per_kg: float = _f(8.0, 0.01, 10000.0, "US$/kg magnet, excluding oxide")
    recycling_capacity_t_per_year: float = _f(0.0, 0.0, 1e7, "t REO/yr")
    recycling_cost_usd_per_kg: float = _f(25.0, 0.01, 10000.0, "US$/kg REO")
    prospect_t_per_year: dict = _f(
        {"miner": 0.0, "separator": 0.0, "magnet_maker": 0.0},
        0.0,
        1e7,
        "undeveloped capacity, t/yr",
        keys=("miner", "separator", "magnet_maker"),
    )
    prospect_cost_multiple: float = _f(1.3, 0.1, 20.0, "unit cost of prospects vs incumbents")
    stockpile_t: dict = _f(_goods(0.0, 0.0, 0.0), 0.0, 1e7, "t REO oxide at start", keys=GOODS)
    stockpile_target_days: float = _f(0.0, 0.0, 3650.0, "days of use")
    stockpile_release_fill: float = _f(0.9, 0.0, 1.0, "release when supply fill falls below")
    industry_output_usd_per_year: float = _f(0.0, 0.0, 1e14, "US$/yr of RE-using output")
    allies: str = _f("", unit="comma-separated country names")
    decision_every_months: int = _f(1, 1, 24, "months between strategy decisions")
    rule_restrict_tension: float = _f(0.5, 0.0, 10.0, "tension at which a coercer restricts")
    rule_instrument: str = _f("licensing", choices=("licensing", "embargo"))
    rule_approval_rate: float = _f(0.2, 0.0, 1.0, "share of licences approved")
    rule_heavy_only: bool = _f(False)
    rule_escalate_after_months: int = _f(6, 0, 240, "months without concession; 0 = never")
    rule_lift_after_months: int = _f(12, 1, 600, "months without concession")
    rule_risk_trigger: float = _f(0.3, 0.0, 1.0, "perceived risk that triggers a response")
    rule_stockpile_days: float = _f(60.0, 0.0, 3650.0, "days of use")
    rule_finance_usd_per_year: float = _f(0.0, 0.0, 1e12, "US$/yr for new supply projects")
    rule_finance_host: str = _f("", unit="country where financed projects are built")
    rule_recycling_subsidy_usd_per_kg: float = _f(0.0, 0.0, 1000.0, "US$/kg")
    rule_rd_usd_per_year: float = _f(0.0, 0.0, 1e12, "US$/yr for substitution R&D")


@dataclass(frozen=True)
class NamedFirm:
    """A real firm, placed with its own capacity and cost."""

    name: str = _f("")
    country: str = _f("", choices=COUNTRIES)
    kind: str = _f("miner", choices=("miner", "separator", "magnet_maker", "recycler"))
    capacity_t_per_year: float = _f(0.0, 0.0, 1e7, "t/yr")
    cost_usd_per_kg: float = _f(5.0, 0.01, 10000.0, "US$/kg")
    ore_basket: dict = _f(_goods(0.0, 0.0, 0.0), 0.0, 1.0, "share of REO", keys=GOODS)
    online: str = _f("", unit="YYYY-MM; empty = at start")
    prospect: bool = _f(False)
    permitted: bool = _f(False)
    build_months: int = _f(0, 0, 240, "months to build a project; 0 = the kind's default")
    cash_usd: float = _f(0.0, -1e12, 1e12, "US$")
    source: str = _f("")


@dataclass(frozen=True)
class VerdictParams:
    """Thresholds for the leverage verdict (see docs/ODD.md, 'Outcomes and verdict')."""

    share_loss_pp: float = _f(2.0, 0.0, 100.0, "pp of world mining share lost vs counterfactual")
    capacity_gain_share: float = _f(0.1, 0.0, 10.0, "ex-China capacity gain vs counterfactual")
    revenue_loss_share: float = _f(0.05, 0.0, 1.0, "discounted revenue lost vs counterfactual")
    discount_rate_per_year: float = _f(0.05, 0.0, 1.0, "for China's revenue")


EVENT_TYPES: dict[str, dict[str, tuple]] = {
    # type: {field: (kind, lo, hi, required)}
    "export_quota": {
        "exporter": ("country", None, None, True),
        "t_per_year": ("float", 0.0, 1e7, True),
        "goods": ("goods", None, None, False),
        "stages": ("stages", None, None, False),
    },
    "embargo": {
        "exporter": ("country", None, None, True),
        "target": ("country", None, None, True),
        "goods": ("goods", None, None, False),
        "stages": ("stages", None, None, False),
    },
    "licensing": {
        "exporter": ("country", None, None, True),
        "target": ("country_or_all", None, None, False),
        "approval_rate": ("float", 0.0, 1.0, True),
        "delay_months": ("int", 0, 60, False),
        "goods": ("goods", None, None, False),
        "stages": ("stages", None, None, False),
    },
    "export_tax": {
        "exporter": ("country", None, None, True),
        "rate": ("float", 0.0, 5.0, True),
        "goods": ("goods", None, None, False),
        "stages": ("stages", None, None, False),
    },
    "production_quota": {
        "country": ("country", None, None, True),
        "t_per_year": ("float", 0.0, 1e7, True),
        "growth_per_year": ("float", -0.5, 1.0, False),
        "heavy_ore_t_per_year": ("float", 0.0, 1e7, False),
        "heavy_ore_min_share": ("float", 0.0, 1.0, False),
    },
    "tech_export_ban": {
        "exporter": ("country", None, None, True),
        "extra_months": ("int", 0, 240, False),
        "cost_multiple": ("float", 1.0, 10.0, False),
    },
    "dispute": {
        "coercer": ("country", None, None, True),
        "target": ("country", None, None, True),
        "demand": ("str", None, None, False),
        "tension": ("float", 0.0, 10.0, False),
    },
    "offtake": {
        "seller": ("firm_or_country", None, None, True),
        "buyer": ("country", None, None, True),
        "good": ("good", None, None, True),
        "stage": ("stage", None, None, False),
        "t_per_year": ("float", 0.0, 1e7, True),
        "price_usd_per_kg": ("float", 0.0, 1e5, False),
    },
    "stockpile": {
        "country": ("country", None, None, True),
        "target_days": ("float", 0.0, 3650.0, True),
        "partners": ("countries", None, None, False),
    },
    "finance": {
        "country": ("country", None, None, True),
        "firm": ("str", None, None, False),
        "host": ("country", None, None, False),
        "kind": ("kind", None, None, False),
        "capacity_t_per_year": ("float", 0.0, 1e7, False),
        "loan_usd": ("float", 0.0, 1e12, False),
        "equity_usd": ("float", 0.0, 1e12, False),
    },
    "price_floor": {
        "country": ("country", None, None, True),
        "firm": ("str", None, None, True),
        "good": ("good", None, None, True),
        "price_usd_per_kg": ("float", 0.0, 1e5, True),
    },
    "permitting": {
        "country": ("country", None, None, True),
        "permit_months": ("int", 0, 240, True),
    },
    "budget": {
        "country": ("country", None, None, True),
        "usd": ("float", -1e13, 1e13, True),
    },
    "recycling_subsidy": {
        "country": ("country", None, None, True),
        "usd_per_kg": ("float", 0.0, 1000.0, True),
    },
    "substitution_rd": {
        "country": ("country", None, None, True),
        "usd": ("float", 0.0, 1e12, True),
        "good": ("good", None, None, False),
        "target_cut": ("float", 0.0, 0.9, False),
    },
    "capacity_shock": {
        "country": ("country", None, None, True),
        "kind": ("kind", None, None, True),
        "share": ("float", -1.0, 10.0, True),
    },
    "new_deposit": {
        "country": ("country", None, None, True),
        "t_per_year": ("float", 0.0, 1e7, True),
        "cost_usd_per_kg": ("float", 0.01, 1e4, False),
    },
    "demand_shock": {
        "country": ("country_or_all", None, None, False),
        "good": ("good", None, None, False),
        "share": ("float", -1.0, 10.0, True),
    },
    "concede": {
        "country": ("country", None, None, True),
    },
}
COERCIVE_BY_DEFAULT = {"export_quota", "embargo", "licensing", "export_tax", "dispute"}
ONE_OFF = ("budget", "finance", "substitution_rd", "capacity_shock", "new_deposit", "demand_shock")
"""Events that act once, in their month: an ``end`` would mean nothing, so it is rejected."""


@dataclass(frozen=True)
class Event:
    """A dated policy measure or outside shock. ``end`` empty means it stays in force."""

    type: str
    date: tuple[int, int]
    end: tuple[int, int] | None
    params: types.MappingProxyType
    coercive: bool
    id: str
    source: str = ""


@dataclass(frozen=True)
class Scenario:
    """A complete, validated scenario."""

    name: str = _f("")
    description: str = _f("")
    start: str = _f("2025-01", unit="YYYY-MM")
    months: int = _f(192, 1, 1200, "months")
    seed: int = _f(42, 0, 2**63 - 1)
    firms: int = _f(400, 20, 1_000_000, "firm agents")
    target: str = _f("Japan", choices=COUNTRIES)
    coercer: str = _f("China", choices=COUNTRIES)
    market: MarketParams = field(default_factory=MarketParams)
    firm_behaviour: FirmParams = field(default_factory=FirmParams)
    verdict: VerdictParams = field(default_factory=VerdictParams)
    countries: tuple[CountryParams, ...] = ()
    named_firms: tuple[NamedFirm, ...] = ()
    events: tuple[Event, ...] = ()
    sources: types.MappingProxyType = field(default_factory=lambda: types.MappingProxyType({}))
    allow_coercion: bool = True
    raw: types.MappingProxyType = field(
        default_factory=lambda: types.MappingProxyType({}), compare=False, repr=False
    )

    @property
    def start_ym(self) -> tuple[int, int]:
        """The start month as (year, month)."""
        return parse_month(self.start, "start")

    def country(self, name: str) -> CountryParams:
        """Return the parameters of a country by name."""
        for c in self.countries:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict:
        """The resolved scenario as plain data (for manifests and re-loading)."""
        return _thaw(self.raw)


# ----------------------------------------------------------------------------- helpers


def parse_month(value: Any, where: str) -> tuple[int, int]:
    """Parse 'YYYY-MM' into (year, month), raising ScenarioError naming ``where``."""
    if isinstance(value, str):
        parts = value.split("-")
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            y, m = int(parts[0]), int(parts[1])
            if 1900 <= y <= 2300 and 1 <= m <= 12:
                return y, m
    raise ScenarioError(f"{where}: {value!r} is not a month; use 'YYYY-MM' (1900-01 to 2300-12)")


def month_index(ym: tuple[int, int], start: tuple[int, int]) -> int:
    """Months from ``start`` to ``ym`` (0 for the start month)."""
    return (ym[0] - start[0]) * 12 + (ym[1] - start[1])


def _freeze(obj):
    if isinstance(obj, dict):
        return types.MappingProxyType({k: _freeze(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return tuple(_freeze(v) for v in obj)
    return obj


def _thaw(obj):
    if isinstance(obj, types.MappingProxyType | dict):
        return {k: _thaw(v) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return [_thaw(v) for v in obj]
    return obj


def _describe_range(meta) -> str:
    lo, hi, unit = meta["lo"], meta["hi"], meta["unit"]
    unit = f" ({unit})" if unit else ""
    return f"{lo:g} to {hi:g}{unit}"


def _check_number(value, kind, meta, where):
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(
            f"{where}: expected a number, got {value!r}; allowed {_describe_range(meta)}"
        )
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise ScenarioError(
                f"{where}: expected a whole number, got {value!r}; allowed {_describe_range(meta)}"
            )
        value = int(value)
    else:
        value = float(value)
    if (
        value != value
        or (meta["lo"] is not None and value < meta["lo"])
        or (meta["hi"] is not None and value > meta["hi"])
    ):
        raise ScenarioError(f"{where}: {value!r} is out of range; allowed {_describe_range(meta)}")
    return value


def _build(cls, data: dict, where: str):
    """Build a frozen dataclass from a TOML table, validating every field."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{where or 'scenario'}: expected a table, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in fields:
            raise ScenarioError(f"{path}: unknown field; allowed: {', '.join(sorted(fields))}")
        f = fields[key]
        meta = f.metadata
        hint = hints[key]
        if hint is bool:
            if not isinstance(value, bool):
                raise ScenarioError(f"{path}: expected true or false, got {value!r}")
            kwargs[key] = value
        elif hint in (int, float):
            kwargs[key] = _check_number(value, hint, meta, path)
        elif hint is str:
            if not isinstance(value, str):
                raise ScenarioError(f"{path}: expected text, got {value!r}")
            if meta.get("choices") and value not in meta["choices"]:
                raise ScenarioError(
                    f"{path}: {value!r} is not allowed; allowed: {', '.join(meta['choices'])}"
                )
            kwargs[key] = value
        elif hint is dict:
            if not isinstance(value, dict):
                raise ScenarioError(f"{path}: expected a table, got {value!r}")
            base = copy.deepcopy(f.default_factory())  # type: ignore[misc]
            for k, v in value.items():
                if meta["keys"] and k not in meta["keys"]:
                    raise ScenarioError(
                        f"{path}.{k}: unknown key; allowed: {', '.join(meta['keys'])}"
                    )
                kind = (
                    int
                    if isinstance(base.get(k), int) and not isinstance(base.get(k), bool)
                    else float
                )
                base[k] = _check_number(v, kind, meta, f"{path}.{k}")
            kwargs[key] = base
        else:
            raise ScenarioError(f"{path}: cannot be set here")
    return cls(**kwargs)


def parse_event(raw: dict, index: int, start: tuple[int, int] | None = None) -> Event:
    """Validate one event (or strategy action) table and return the frozen :class:`Event`."""
    where = f"events[{index}]"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: expected a table")
    etype = raw.get("type")
    if etype not in EVENT_TYPES:
        raise ScenarioError(
            f"{where}.type: {etype!r} is not an event type; allowed: {', '.join(EVENT_TYPES)}"
        )
    if "date" not in raw:
        raise ScenarioError(f"{where}.date: missing; give the month as 'YYYY-MM'")
    date = parse_month(raw["date"], f"{where}.date")
    end = parse_month(raw["end"], f"{where}.end") if raw.get("end") else None
    if end is not None and month_index(end, date) < 0:
        raise ScenarioError(f"{where}.end: {raw['end']!r} is before date {raw['date']!r}")
    if end is not None and etype in (*ONE_OFF, "concede"):
        raise ScenarioError(
            f"{where}.end: a {etype} event acts once, in its month, and takes no end; remove "
            f"it (end is allowed on standing measures and disputes)"
        )
    spec = EVENT_TYPES[etype]
    params = {}
    for key, value in raw.items():
        if key in ("type", "date", "end", "coercive", "id", "source"):
            continue
        if key not in spec:
            allowed = ", ".join(["type", "date", "end", "coercive", "id", "source", *spec])
            raise ScenarioError(f"{where}.{key}: unknown field for {etype}; allowed: {allowed}")
        kind, lo, hi, _ = spec[key]
        path = f"{where}.{key}"
        params[key] = _check_event_value(kind, lo, hi, value, path)
    for key, (_kind, _lo, _hi, required) in spec.items():
        if required and key not in params:
            raise ScenarioError(f"{where}.{key}: missing; required for {etype}")
    coercive = raw.get("coercive", etype in COERCIVE_BY_DEFAULT)
    if not isinstance(coercive, bool):
        raise ScenarioError(f"{where}.coercive: expected true or false, got {coercive!r}")
    eid = raw.get("id") or f"{etype}-{date[0]:04d}-{date[1]:02d}-{index}"
    return Event(
        type=etype,
        date=date,
        end=end,
        params=types.MappingProxyType(params),
        coercive=coercive,
        id=str(eid),
        source=str(raw.get("source", "")),
    )


def _check_event_value(kind, lo, hi, value, path):
    meta = {"lo": lo, "hi": hi, "unit": ""}
    if kind == "float":
        return _check_number(value, float, meta, path)
    if kind == "int":
        return _check_number(value, int, meta, path)
    if kind == "str":
        if not isinstance(value, str):
            raise ScenarioError(f"{path}: expected text, got {value!r}")
        return value
    choices = {
        "country": COUNTRIES,
        "country_or_all": (*COUNTRIES, "all"),
        "good": GOODS,
        "stage": STAGES,
        "kind": ("miner", "separator", "magnet_maker", "recycler"),
    }
    if kind in choices:
        if value not in choices[kind]:
            raise ScenarioError(
                f"{path}: {value!r} is not allowed; allowed: {', '.join(choices[kind])}"
            )
        return value
    if kind == "firm_or_country":
        if not isinstance(value, str) or not value:
            raise ScenarioError(f"{path}: expected a firm or country name, got {value!r}")
        return value
    lists = {"goods": GOODS, "stages": STAGES, "countries": COUNTRIES}
    if kind in lists:
        if not isinstance(value, list) or not value or any(v not in lists[kind] for v in value):
            raise ScenarioError(
                f"{path}: expected a non-empty list drawn from: {', '.join(lists[kind])}"
            )
        return tuple(value)
    raise ScenarioError(f"{path}: unsupported field kind {kind}")  # pragma: no cover


# ----------------------------------------------------------------------------- loading


def builtin_names() -> list[str]:
    """Names of the built-in scenarios shipped in the ``scenarios`` package."""
    root = resources.files("scenarios")
    return sorted(
        p.name[:-5]
        for p in root.iterdir()
        if p.name.endswith(".toml") and not p.name.startswith("_")
    )


def _read_toml(ref: str) -> tuple[dict, str]:
    """Read a scenario by built-in name or path; return the table and a label."""
    path = Path(ref)
    if _is_path(ref):
        if not path.is_file():
            raise ScenarioError(f"scenario: file {ref!r} not found")
        text = path.read_text(encoding="utf-8")
        label = str(path)
    else:
        res = resources.files("scenarios") / f"{ref}.toml"
        if not res.is_file():
            raise ScenarioError(
                f"scenario: {ref!r} is not a built-in scenario or a file; "
                f"built-ins: {', '.join(builtin_names())}"
            )
        text = res.read_text(encoding="utf-8")
        label = ref
    try:
        return tomllib.loads(text), label
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{label}: malformed TOML: {exc}") from None


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if key == "events" and isinstance(value, list):
            ids = {e.get("id") for e in value if isinstance(e, dict) and e.get("id")}
            kept = [e for e in out.get("events", []) if e.get("id") not in ids or not e.get("id")]
            out["events"] = kept + copy.deepcopy(value)
        elif key == "named_firms" and isinstance(value, list):
            names = {f.get("name") for f in value if isinstance(f, dict)}
            kept = [f for f in out.get("named_firms", []) if f.get("name") not in names]
            out["named_firms"] = kept + copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _is_path(ref: str) -> bool:
    """A reference is a file path when it ends in .toml, names a folder, or is a real file."""
    return ref.endswith(".toml") or "/" in ref or Path(ref).is_file()


def _canonical(ref: str) -> str:
    """One key per scenario, however it was named (for finding cycles in ``extends``)."""
    return str(Path(ref).resolve()) if _is_path(ref) else f"builtin:{ref}"


def resolve_raw(ref: str, _seen: tuple[str, ...] = ()) -> dict:
    """Read a scenario and everything it extends, merged into one table.

    A file's relative ``extends`` path is taken from the file's own folder; a bare name is a
    built-in scenario. A cycle raises :class:`ScenarioError`.
    """
    data, label = _read_toml(ref)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ScenarioError(f"{label}: extends: expected a scenario name or path")
    if _is_path(parent):
        ppath = Path(parent)
        if not ppath.is_absolute() and _is_path(ref):
            ppath = Path(ref).parent / ppath
        parent = str(ppath)
    seen = (*_seen, _canonical(ref))
    if _canonical(parent) in seen:
        raise ScenarioError(f"{label}: extends: cycle through {parent!r}")
    return _merge(resolve_raw(parent, seen), data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse one ``--set KEY=VALUE`` (VALUE is a TOML value; bare words are text)."""
    if "=" not in text:
        raise ScenarioError(f"--set {text!r}: expected KEY=VALUE, e.g. market.leakage_share=0.2")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ScenarioError(f"--set {text!r}: empty key; use dotted keys like countries.Japan.x")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return key.split("."), parsed


def apply_overrides(raw: dict, overrides: list[str] | None) -> dict:
    """Apply ``--set`` overrides (dotted keys) to a raw scenario table."""
    out = copy.deepcopy(raw)
    for text in overrides or []:
        parts, value = parse_override(text)
        node = out
        for part in parts[:-1]:
            if part not in node:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise ScenarioError(f"--set {text!r}: {part!r} is not a table")
        node[parts[-1]] = value
    return out


def build_scenario(raw: dict) -> Scenario:
    """Validate a merged raw table and build the frozen :class:`Scenario`."""
    raw = copy.deepcopy(raw)
    top_fields = {f.name for f in dataclasses.fields(Scenario)} - {"raw", "allow_coercion"}
    for key in raw:
        if key not in top_fields:
            raise ScenarioError(f"{key}: unknown field; allowed: {', '.join(sorted(top_fields))}")
    simple = {
        k: raw[k]
        for k in ("name", "description", "start", "months", "seed", "firms", "target", "coercer")
        if k in raw
    }
    base = _build(Scenario, simple, "")
    start = parse_month(base.start, "start")
    market = _build(MarketParams, raw.get("market", {}), "market")
    firm_b = _build(FirmParams, raw.get("firm_behaviour", {}), "firm_behaviour")
    verdict = _build(VerdictParams, raw.get("verdict", {}), "verdict")
    ctables = raw.get("countries", {})
    if not isinstance(ctables, dict):
        raise ScenarioError("countries: expected a table of countries")
    countries = []
    for name in COUNTRIES:
        table = ctables.get(name, {})
        if not isinstance(table, dict):
            raise ScenarioError(f"countries.{name}: expected a table of fields, got {table!r}")
        table = dict(table)
        table["name"] = name
        countries.append(_build(CountryParams, table, f"countries.{name}"))
    for name in ctables:
        if name not in COUNTRIES:
            raise ScenarioError(
                f"countries.{name}: unknown country; allowed: {', '.join(COUNTRIES)}"
            )
    for cp in countries:
        for fname, value in (("allies", cp.allies), ("rule_finance_host", cp.rule_finance_host)):
            for part in filter(None, (v.strip() for v in value.split(","))):
                if part not in COUNTRIES:
                    raise ScenarioError(
                        f"countries.{cp.name}.{fname}: {part!r} is not a country; "
                        f"allowed: {', '.join(COUNTRIES)}"
                    )
    nf = raw.get("named_firms", [])
    if not isinstance(nf, list):
        raise ScenarioError("named_firms: expected a list of tables")
    named = []
    for i, t in enumerate(nf):
        firm = _build(NamedFirm, t, f"named_firms[{i}]")
        if not firm.name:
            raise ScenarioError(f"named_firms[{i}].name: missing")
        if not firm.country:
            raise ScenarioError(
                f"named_firms[{i}].country: missing; allowed: {', '.join(COUNTRIES)}"
            )
        if firm.online:
            parse_month(firm.online, f"named_firms[{i}].online")
        named.append(firm)
    evs = raw.get("events", [])
    if not isinstance(evs, list):
        raise ScenarioError("events: expected a list of tables ([[events]])")
    events = tuple(parse_event(e, i, start) for i, e in enumerate(evs))
    ids = [e.id for e in events]
    dup = {x for x in ids if ids.count(x) > 1}
    if dup:
        raise ScenarioError(f"events: duplicate id {sorted(dup)[0]!r}; ids must be unique")
    names = {f.name for f in named}
    kinds = {f.name: f.kind for f in named}
    for i, e in enumerate(events):
        firm = e.params.get("firm")
        if e.type == "price_floor" and firm not in names:
            raise ScenarioError(
                f"events[{i}].firm: {firm!r} is not a named firm; named: {', '.join(sorted(names))}"
            )
        if e.type == "price_floor" and kinds[firm] not in ("separator", "recycler"):
            raise ScenarioError(
                f"events[{i}].firm: {firm!r} is a {kinds[firm]}; a price floor guarantees an "
                "oxide price, allowed: a named separator or recycler"
            )
        if e.type == "offtake" and e.params["seller"] not in names | set(COUNTRIES):
            raise ScenarioError(
                f"events[{i}].seller: {e.params['seller']!r} is neither a named firm nor a country"
            )
    sources = raw.get("sources", {})
    if not isinstance(sources, dict) or not all(isinstance(v, str) for v in sources.values()):
        raise ScenarioError("sources: expected a table of text (parameter = 'source row')")
    return dataclasses.replace(
        base,
        market=market,
        firm_behaviour=firm_b,
        verdict=verdict,
        countries=tuple(countries),
        named_firms=tuple(named),
        events=events,
        sources=types.MappingProxyType(dict(sources)),
        raw=_freeze(raw),
    )


def load_scenario(ref: str = "default", overrides: list[str] | None = None, **changes) -> Scenario:
    """Load a built-in scenario by name (or a TOML file by path), apply overrides, validate.

    Args:
        ref: built-in name (see ``lanthanide scenarios``) or path to a TOML file.
        overrides: ``KEY=VALUE`` strings with dotted keys, as on the command line.
        **changes: top-level fields to replace (``months``, ``seed``, ``firms``).

    Returns:
        The validated, frozen scenario.
    """
    raw = resolve_raw(ref)
    raw = apply_overrides(raw, overrides)
    for key, value in changes.items():
        if value is not None:
            raw[key] = value
    raw.setdefault("name", Path(ref).stem if ref.endswith(".toml") else ref)
    return build_scenario(raw)


def counterfactual(scenario: Scenario) -> Scenario:
    """The same scenario with every coercive measure removed (and coercion disabled)."""
    raw = _thaw(scenario.raw)
    raw["events"] = [
        e
        for e, parsed in zip(raw.get("events", []), scenario.events, strict=True)
        if not parsed.coercive
    ]
    cf = build_scenario(raw)
    return dataclasses.replace(cf, allow_coercion=False)
