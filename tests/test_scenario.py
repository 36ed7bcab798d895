"""Scenarios as data: the built-ins load, ``extends`` merges, ``--set`` overrides, errors name
the field, and the counterfactual drops exactly the coercive measures."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from abm.constants import COUNTRIES
from abm.scenario import (
    COERCIVE_BY_DEFAULT,
    ScenarioError,
    apply_overrides,
    build_scenario,
    builtin_names,
    counterfactual,
    load_scenario,
    parse_override,
    resolve_raw,
)

EMBARGO = """
[[events]]
id = "test-embargo"
type = "embargo"
date = "2025-03"
end = "2025-08"
exporter = "China"
target = "Japan"
"""


# ----------------------------------------------------------------------------- built-ins


def test_the_documented_builtins_are_shipped():
    names = builtin_names()
    assert names == sorted(names)
    for name in ("default", "baseline-2025", "taiwan-crisis", "history-2010"):
        assert name in names


@pytest.mark.parametrize("name", builtin_names())
def test_every_builtin_loads_and_round_trips_through_json(name):
    scn = load_scenario(name)
    assert scn.name == name
    assert scn.description
    assert [c.name for c in scn.countries] == list(COUNTRIES)
    assert scn.target in COUNTRIES and scn.coercer in COUNTRIES
    assert scn.allow_coercion
    ids = [e.id for e in scn.events]
    assert len(ids) == len(set(ids))
    # the resolved scenario (as written to manifest.json) rebuilds the same scenario
    again = build_scenario(json.loads(json.dumps(scn.to_dict())))
    assert again == scn


def test_default_is_the_taiwan_crisis():
    default, taiwan = load_scenario("default"), load_scenario("taiwan-crisis")
    assert dataclasses.replace(default, name="x", description="") == dataclasses.replace(
        taiwan, name="x", description=""
    )


def test_top_level_changes_replace_fields_and_seed_zero_is_a_seed():
    scn = load_scenario("baseline-2025", months=30, firms=150, seed=0)
    assert (scn.months, scn.firms, scn.seed) == (30, 150, 0)
    # None leaves the scenario's own value
    assert load_scenario("baseline-2025", seed=None).seed == load_scenario("baseline-2025").seed


# ----------------------------------------------------------------------------- extends


def test_extends_merges_tables_key_by_key_and_appends_events(scenario_file):
    base = load_scenario("baseline-2025")
    scenario_file(
        """
description = "parent"
[market]
leakage_share = 0.2
[countries.Japan]
resolve = 0.5
stockpile_target_days = 90
"""
        + EMBARGO,
        name="parent",
        filename="parent.toml",
    )
    child_path = scenario_file(
        """
[countries.Japan]
resolve = 0.3

[[events]]
id = "child-licensing"
type = "licensing"
date = "2026-01"
exporter = "China"
target = "all"
goods = ["heavy"]
approval_rate = 0.5
""",
        extends="parent.toml",  # relative to the child file
        name="child",
        filename="child.toml",
    )
    child = load_scenario(child_path)
    assert child.name == "child"
    assert child.description == "parent"  # inherited
    assert child.market.leakage_share == 0.2  # from the parent
    assert child.market.arbitrage_strength == base.market.arbitrage_strength  # from baseline
    japan = child.country("Japan")
    assert japan.resolve == 0.3  # the child's override wins
    assert japan.stockpile_target_days == 90  # the parent's other field survives
    assert japan.demand_t_per_year == base.country("Japan").demand_t_per_year
    ids = [e.id for e in child.events]
    assert ids == [e.id for e in base.events] + ["test-embargo", "child-licensing"]
    lic = child.events[-1]
    assert lic.type == "licensing" and lic.date == (2026, 1) and lic.coercive
    assert lic.params["goods"] == ("heavy",) and lic.params["approval_rate"] == 0.5


def test_an_event_with_an_inherited_id_replaces_it(scenario_file):
    scenario_file(EMBARGO, name="parent", filename="parent.toml")
    child = scenario_file(
        EMBARGO.replace('end = "2025-08"', 'end = "2026-08"'),
        extends="parent.toml",
        filename="child.toml",
    )
    events = [e for e in load_scenario(child).events if e.id == "test-embargo"]
    assert len(events) == 1 and events[0].end == (2026, 8)


def test_extends_by_absolute_path(scenario_file, tmp_path):
    parent = scenario_file('description = "abs"\n', filename="parent.toml")
    child = scenario_file("", extends=parent, name="c", filename="sub.toml")
    assert load_scenario(child).description == "abs"


def test_extends_cycle_is_reported_when_loaded_by_relative_path(
    scenario_file, tmp_path, monkeypatch
):
    scenario_file("", extends="b.toml", name="a", filename="a.toml")
    scenario_file("", extends="a.toml", name="b", filename="b.toml")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ScenarioError, match="cycle"):
        load_scenario("a.toml")


def test_extends_cycle_is_reported_when_loaded_by_absolute_path(scenario_file):
    a = scenario_file("", extends="b.toml", name="a", filename="a.toml")
    scenario_file("", extends="a.toml", name="b", filename="b.toml")
    with pytest.raises(ScenarioError, match="cycle"):
        load_scenario(a)


# ----------------------------------------------------------------------------- overrides


def test_parse_override_reads_toml_values_and_bare_words():
    assert parse_override("market.leakage_share=0.3") == (["market", "leakage_share"], 0.3)
    assert parse_override("months = 36") == (["months"], 36)
    assert parse_override("countries.Japan.rule_heavy_only=true")[1] is True
    assert parse_override("countries.Japan.allies=United States")[1] == "United States"
    assert parse_override('name="a = b"') == (["name"], "a = b")


def test_apply_overrides_sets_nested_keys_without_touching_the_input():
    raw = {"market": {"leakage_share": 0.1}}
    out = apply_overrides(raw, ["market.leakage_share=0.4", "countries.Japan.resolve=2"])
    assert out == {"market": {"leakage_share": 0.4}, "countries": {"Japan": {"resolve": 2}}}
    assert raw == {"market": {"leakage_share": 0.1}}


def test_load_scenario_applies_overrides_and_keeps_everything_else():
    base = load_scenario("taiwan-crisis")
    scn = load_scenario(
        "taiwan-crisis",
        [
            "market.leakage_share=0.3",
            "countries.Japan.stockpile_target_days=180",
            "countries.Japan.allies=United States",
            "firm_behaviour.build_months.miner=60",
        ],
    )
    assert scn.market.leakage_share == 0.3
    assert scn.country("Japan").stockpile_target_days == 180
    assert scn.country("Japan").allies == "United States"
    assert scn.firm_behaviour.build_months["miner"] == 60
    assert (
        scn.firm_behaviour.build_months["separator"]
        == base.firm_behaviour.build_months["separator"]
    )
    assert scn.market.arbitrage_strength == base.market.arbitrage_strength
    assert scn.country("China") == base.country("China")
    assert scn.events == base.events
    # the overrides are part of the resolved scenario (what manifest.json records)
    assert scn.to_dict()["market"]["leakage_share"] == 0.3


# ----------------------------------------------------------------------------- errors

BAD_OVERRIDES = [
    # (overrides, fragments the message must contain)
    (["market.nonsense=1"], ["market.nonsense", "unknown field", "leakage_share"]),
    (["colour=1"], ["colour", "unknown field"]),
    (["market.leakage_share=2"], ["market.leakage_share", "out of range", "0 to 1"]),
    (["months=0"], ["months", "out of range", "1 to 1200"]),
    (["firm_behaviour.risk_half_life_months=0.1"], ["risk_half_life_months", "0.5 to 600"]),
    (["market.demand_elasticity.ndpr=-1"], ["market.demand_elasticity.ndpr", "0 to 3"]),
    (["market.leakage_share=lots"], ["market.leakage_share", "expected a number", "0 to 1"]),
    (["firm_behaviour.idle_after_loss_months=2.5"], ["idle_after_loss_months", "whole number"]),
    (["countries.Japan.rule_heavy_only=1"], ["rule_heavy_only", "true or false"]),
    (["market=5"], ["market", "expected a table"]),
    (["market.demand_elasticity.cerium=0.1"], ["demand_elasticity.cerium", "light, ndpr, heavy"]),
    (["countries.Narnia.resolve=1"], ["countries.Narnia", "unknown country", "Japan"]),
    (["countries.Japan.allies=Narnia"], ["allies", "'Narnia' is not a country"]),
    (["target=Narnia"], ["target", "'Narnia' is not allowed", "China"]),
    (["start=2025-13"], ["start", "'2025-13' is not a month", "YYYY-MM"]),
    (["nonsense"], ["--set 'nonsense'", "KEY=VALUE"]),
    (["=3"], ["empty key"]),
    (["market.leakage_share.x=1"], ["market.leakage_share", "expected a number"]),
]


@pytest.mark.parametrize("overrides, fragments", BAD_OVERRIDES)
def test_bad_override_raises_a_one_line_error_naming_the_field(overrides, fragments):
    with pytest.raises(ScenarioError) as exc:
        load_scenario("baseline-2025", overrides)
    msg = str(exc.value)
    assert "\n" not in msg
    for fragment in fragments:
        assert fragment in msg


EVENT = {"type": "embargo", "date": "2025-03", "exporter": "China", "target": "Japan"}


def _event_toml(**fields) -> str:
    table = {**EVENT, **fields}
    lines = [
        f"{k} = {json.dumps(v) if not isinstance(v, bool) else str(v).lower()}"
        for k, v in table.items()
        if v is not None
    ]
    return "\n[[events]]\n" + "\n".join(lines) + "\n"


BAD_FILES = [
    # (TOML body after extends/name, regex the message must match)
    ("[market\nleakage_share = 0.2\n", r"malformed TOML"),
    ("months = 1\nmonths = 2\n", r"malformed TOML"),
    ('colour = "red"\n', r"^colour: unknown field; allowed: .*months"),
    (
        "[market]\nleakage_share = 1.5\n",
        r"market\.leakage_share: 1\.5 is out of range; allowed 0 to 1",
    ),
    ('months = "long"\n', r"^months: expected a number, got 'long'; allowed 1 to 1200"),
    ("[countries.Narnia]\nresolve = 2\n", r"countries\.Narnia: unknown country; allowed: China"),
    ('start = "Jan 2025"\n', r"^start: 'Jan 2025' is not a month; use 'YYYY-MM'"),
    (_event_toml(type="blockade"), r"events\[\d+\]\.type: 'blockade' is not an event type"),
    (_event_toml(type=None), r"events\[\d+\]\.type: None is not an event type; allowed: .*embargo"),
    (_event_toml(target=None), r"events\[\d+\]\.target: missing; required for embargo"),
    (_event_toml(date=None), r"events\[\d+\]\.date: missing; give the month as 'YYYY-MM'"),
    (_event_toml(target="Narnia"), r"events\[\d+\]\.target: 'Narnia' is not allowed; allowed: "),
    (_event_toml(exporter="narnia"), r"events\[\d+\]\.exporter: 'narnia' is not allowed"),
    (_event_toml(date="2025-3x"), r"events\[\d+\]\.date: '2025-3x' is not a month"),
    (_event_toml(date="2025-13"), r"events\[\d+\]\.date: '2025-13' is not a month"),
    (_event_toml(end="2025-01"), r"events\[\d+\]\.end: '2025-01' is before date '2025-03'"),
    (_event_toml(rate=0.5), r"events\[\d+\]\.rate: unknown field for embargo; allowed: "),
    (_event_toml(goods=["cerium"]), r"events\[\d+\]\.goods: expected a non-empty list"),
    (_event_toml(coercive="yes"), r"events\[\d+\]\.coercive: expected true or false"),
    (
        _event_toml(type="licensing", target="all", approval_rate=1.5),
        r"events\[\d+\]\.approval_rate: 1\.5 is out of range; allowed 0 to 1",
    ),
    (
        _event_toml(type="licensing", target=None),
        r"events\[\d+\]\.approval_rate: missing; required for licensing",
    ),
    (_event_toml(id="a") + _event_toml(id="a"), r"events: duplicate id 'a'"),
    ("[events]\ntype = 'embargo'\n", r"events: expected a list of tables"),
    ('[[named_firms]]\nname = "X"\n', r"named_firms\[\d+\]\.country: missing"),
]


@pytest.mark.parametrize("body, pattern", BAD_FILES)
def test_bad_file_raises_a_one_line_error_naming_the_field(scenario_file, body, pattern):
    path = scenario_file(body)
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    msg = str(exc.value)
    assert "\n" not in msg
    assert re.search(pattern, msg), msg


@pytest.mark.parametrize("how", ["file", "override"])
def test_a_country_that_is_not_a_table_is_a_scenario_error(scenario_file, how):
    with pytest.raises(ScenarioError, match=r"countries\.Japan"):
        if how == "file":
            load_scenario(scenario_file("[countries]\nJapan = 5\n"))
        else:
            load_scenario("baseline-2025", ["countries.Japan=5"])


def test_unknown_scenario_name_lists_the_builtins():
    with pytest.raises(ScenarioError) as exc:
        load_scenario("no-such-scenario")
    msg = str(exc.value)
    assert "'no-such-scenario' is not a built-in scenario" in msg
    for name in builtin_names():
        assert name in msg


def test_a_folder_named_like_a_builtin_does_not_hide_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taiwan-crisis").mkdir()  # e.g. left by: lanthanide run ... --out taiwan-crisis
    assert load_scenario("taiwan-crisis").name == "taiwan-crisis"


def test_missing_file_and_missing_parent_are_scenario_errors(scenario_file, tmp_path):
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(str(tmp_path / "absent.toml"))
    with pytest.raises(ScenarioError, match="'no-such-parent' is not a built-in"):
        load_scenario(scenario_file("", extends="no-such-parent"))
    with pytest.raises(ScenarioError, match="extends: expected a scenario name"):
        resolve_raw(scenario_file("extends = 5\n", extends=None))


# ----------------------------------------------------------------------------- counterfactual


def test_counterfactual_drops_coercive_events_and_disables_coercion():
    scn = load_scenario("history-2010")
    cf = counterfactual(scn)
    assert cf.allow_coercion is False
    assert not any(e.coercive for e in cf.events)
    kept = [e for e in scn.events if not e.coercive]
    assert [e.id for e in cf.events] == [e.id for e in kept]
    # history-2010 marks its 2009 quota as not coercive: it stays; the 2010 cut goes
    ids = {e.id for e in cf.events}
    assert "china-quota-2009" in ids and "china-quota-cut-2010" not in ids
    # everything else is the same scenario
    for name in ("market", "firm_behaviour", "verdict", "countries", "named_firms", "seed"):
        assert getattr(cf, name) == getattr(scn, name), name
    # the scenario itself is untouched
    assert scn.allow_coercion and any(e.coercive for e in scn.events)


def test_coercive_flag_decides_what_the_counterfactual_keeps(scenario_file):
    path = scenario_file(
        _event_toml(id="quiet-embargo", coercive=False)
        + _event_toml(id="loud-embargo")
        + """
[[events]]
id = "coercive-stockpile"
type = "stockpile"
date = "2025-02"
country = "Japan"
target_days = 90
coercive = true

[[events]]
id = "plain-stockpile"
type = "stockpile"
date = "2025-02"
country = "Japan"
target_days = 60
"""
    )
    scn = load_scenario(path)
    flags = {e.id: e.coercive for e in scn.events}
    assert flags["loud-embargo"] and flags["coercive-stockpile"]
    assert not flags["quiet-embargo"] and not flags["plain-stockpile"]
    assert {"embargo", "licensing", "export_quota", "export_tax", "dispute"} <= COERCIVE_BY_DEFAULT
    ids = [e.id for e in counterfactual(scn).events]
    assert "quiet-embargo" in ids and "plain-stockpile" in ids
    assert "loud-embargo" not in ids and "coercive-stockpile" not in ids


def test_counterfactual_of_a_scenario_without_coercion_keeps_every_event():
    scn = load_scenario("baseline-2025")
    cf = counterfactual(scn)
    assert cf.events == scn.events
    assert dataclasses.replace(cf, allow_coercion=True) == scn
