"""The explorer without a browser: charts, the stepping pair, levers and the page (render)."""

from __future__ import annotations

import io
import json

import ipyvuetify as v
import mesa
import pandas as pd
import pytest
import solara

from abm.constants import COUNTRIES
from abm.scenario import ScenarioError, load_scenario
from experiments.runner import run_scenario
from viz import charts
from viz.components import Chart, LeverageMeter, Table, meter_figures
from viz.levers import STATE_LEVERS, configure, current_value, load_uploaded, parse_seed
from viz.live import LiveViews
from viz.session import RunPair
from viz.widgets import TomlUpload, VegaChart

SMALL = {"months": 18, "firms": 120}


@pytest.fixture(scope="module")
def small():
    return load_scenario("default", **SMALL)


@pytest.fixture(scope="module")
def stepped(small):
    """A pair stepped to the horizon, with the views grown month by month."""
    pair = RunPair(small, seed=0)
    views = LiveViews()
    while (month := pair.step()) is not None:
        views.add_month(month.rows, month.date)
    yield pair, views
    pair.close()


def _key(row: dict) -> tuple:
    return tuple(sorted((k, str(val)) for k, val in row.items()))


# ------------------------------------------------------------------ session


def test_the_pair_gives_exactly_the_cli_outputs(stepped, small, canonical):
    pair, _ = stepped
    ref = run_scenario(small, seed=0)
    assert pair.summary() == ref.summary
    got = pd.read_parquet(io.BytesIO(pair.parquet_bytes()))
    assert canonical(got).equals(canonical(ref.timeseries))
    assert pair.events() == ref.events
    assert json.loads(pair.summary_bytes())["verdict"] == ref.summary["verdict"]


def test_seed_text_is_converted_and_seed_zero_is_a_seed(small):
    assert parse_seed(" 7 ") == 7 and parse_seed("0") == 0 and parse_seed(3) == 3
    for bad in ("x", "1.5", "-1", ""):
        with pytest.raises(ScenarioError, match="^seed: "):
            parse_seed(bad)
    a, b = RunPair(small, seed=parse_seed("0")), RunPair(small, seed=0)
    for p in (a, b):
        for _ in range(3):
            p.step()
    assert a.timeseries["value"].equals(b.timeseries["value"])
    assert a.seed == 0
    a.close()
    b.close()


def test_closing_a_pair_releases_its_models(small):
    pair = RunPair(small, seed=1)
    models = list(pair.models.values())
    assert all(m in mesa.Agent._ids for m in models)
    pair.close()
    assert not any(m in mesa.Agent._ids for m in models)


# ------------------------------------------------------------------ charts


def test_views_grown_month_by_month_equal_views_of_the_whole_history(stepped):
    pair, views = stepped
    ts = pair.timeseries
    for name, (rows_fn, spec_fn) in charts.VIEWS.items():
        whole = rows_fn(ts)
        assert sorted(map(_key, whole)) == sorted(map(_key, views.rows[name])), name
        spec = spec_fn()
        assert spec["data"] == {"name": "table"}
        json.dumps(spec)  # plain JSON
        assert all(r["run"] in (charts.RUN, charts.COUNTERFACTUAL) for r in whole)


def test_view_rows_have_units_converted_and_dates(stepped):
    pair, views = stepped
    ts = pair.timeseries
    share = charts.share_rows(ts)
    assert share and all(0 <= r["value"] <= 100 for r in share)
    raw = ts[(ts.variable == "china_share") & (ts.run == "scenario")]["value"]
    assert max(r["value"] for r in share if r["run"] == charts.RUN) == pytest.approx(
        100 * raw.max()
    )
    assert {r["date"][:7] for r in charts.price_rows(ts)} == {d[:7] for d in pair.dates}
    flows = views.rows["flows"]
    assert flows and {r["date"] for r in flows} == {str(ts["date"].max().date())}
    assert all(r["route"] in ("open", "restricted") for r in flows)


def test_one_colour_per_country_everywhere():
    assert list(charts.COUNTRY_COLOURS) == list(COUNTRIES)
    assert len(set(charts.COUNTRY_COLOURS.values())) == len(COUNTRIES)
    from experiments.charts import COUNTRY_COLOURS as cli

    assert charts.COUNTRY_COLOURS == cli
    scale = charts.country_scale()
    for name in ("dependence", "stocks", "capacity"):
        spec = json.dumps(charts.VIEWS[name][1]())
        assert json.dumps(scale["range"]) in spec


def test_static_chart_carries_its_data(stepped):
    pair, _ = stepped
    spec = charts.chart("capacity", pair.timeseries, "concentrate")
    assert spec["datasets"]["table"] and "mining" in spec["title"]["text"]
    box, rc = solara.render(Chart(spec), handle_error=False)
    assert rc.find(VegaChart).widget.spec["datasets"]["table"]


# ------------------------------------------------------------------ widget and components


def test_chart_widget_sends_only_new_rows():
    w = VegaChart(spec=charts.share_spec())
    rows = [{"value": 1}]
    w.show(rows, epoch=1, stamp="2025-01")
    assert w.full == {"epoch": 1, "rows": [{"value": 1}], "stamp": "2025-01", "ack": False}
    rows += [{"value": 2}, {"value": 3}]
    w.show(rows, epoch=1, stamp="2025-02")
    assert w.chunk["start"] == 1 and w.chunk["rows"] == [{"value": 2}, {"value": 3}]
    w.show([{"value": 9}], epoch=2, stamp="2025-01")  # a new table
    assert w.full["epoch"] == 2 and w.full["rows"] == [{"value": 9}]
    w.show([{"value": 5}], epoch=2, stamp="2025-02", replace=True)
    assert w.chunk["replace"] and w.chunk["rows"] == [{"value": 5}]
    w.vue_resync()
    assert w.full["rows"] == [{"value": 5}]


def test_charts_report_what_the_page_drew_while_someone_listens():
    views = LiveViews()
    w = VegaChart(spec=charts.share_spec(), on_drawn=views.reporters["share"])
    w.show([{"value": 1}], epoch=1, stamp="2025-01")
    assert w.full["ack"]  # the page is asked to report
    views.stamp = "2025-01"
    assert not views.wait_drawn("2025-01", timeout=0.05)  # nothing drawn yet: gives up
    w.vue_drawn("2025-01")
    assert views.drawn["share"] == "2025-01"
    for name in charts.VIEWS:
        views.reporters[name]("2025-02")
    assert views.wait_drawn("2025-01", timeout=5)  # a later month counts too
    w.on_drawn = None
    w.show([{"value": 1}, {"value": 2}], epoch=1, stamp="2025-02")
    assert not w.chunk["ack"]


def test_leverage_meter_reads_the_summary(stepped):
    pair, _ = stepped
    summary = pair.summary()
    f = meter_figures(summary)
    o = summary["outcomes"]
    assert f["verdict"] == summary["verdict"]
    assert f["share_delta_pp"] == pytest.approx(100 * o["coercer_share_mining_end"]["delta"])
    rev = o["coercer_revenue_discounted_usd"]
    assert f["revenue_delta_share"] == pytest.approx(rev["delta"] / rev["counterfactual"])
    box, rc = solara.render(LeverageMeter(summary, pair.month, pair.horizon), handle_error=False)
    text = _texts(rc)
    from viz.components import VERDICT_STYLE

    assert VERDICT_STYLE[summary["verdict"]][1] in text


def test_table_is_not_a_list():
    t = Table()
    t.rows.extend([{"a": 1}])
    assert t.version == (0, 1) and not isinstance(t, list | dict)


# ------------------------------------------------------------------ levers and uploads


def test_levers_come_from_the_scenario_fields():
    scn = load_scenario("default")
    for lever in STATE_LEVERS:
        value = current_value(scn, f"countries.Japan.{lever.field}")
        if lever.kind in ("float", "int"):
            assert lever.lo <= value <= lever.hi, lever
    changed = configure(scn, {"countries.Japan.resolve": 2.5, "market.leakage_share": 0.4})
    assert current_value(changed, "countries.Japan.resolve") == 2.5
    assert current_value(changed, "market.leakage_share") == 0.4
    with pytest.raises(ScenarioError, match="countries.Japan.resolve"):
        configure(scn, {"countries.Japan.resolve": 500.0})


@pytest.mark.parametrize(
    "body",
    [
        "[countries.Japan]\nresolve = 500\n",
        "this is = not toml [",
        "[countries.Narnia]\nresolve = 1\n",
        '[[events]]\ntype = "embargo"\ndate = "2026-13"\n',
    ],
)
def test_an_upload_is_refused_with_the_message_the_cli_prints(tmp_path, capsys, body):
    from experiments.cli import main

    path = tmp_path / "mine.toml"
    path.write_text('extends = "taiwan-crisis"\n' + body)
    assert main(["validate", str(path)]) == 2
    cli = capsys.readouterr().err.strip().removeprefix("lanthanide: error: ")
    with pytest.raises(ScenarioError) as err:
        load_uploaded("mine.toml", path.read_text())
    assert str(err.value) == cli.replace(str(path), "mine.toml")
    assert "\n" not in str(err.value)


def test_an_upload_must_be_small_toml():
    with pytest.raises(ScenarioError, match="expected a .toml"):
        load_uploaded("notes.txt", "x = 1")
    with pytest.raises(ScenarioError, match="too large"):
        load_uploaded("big.toml", None)
    scn = load_uploaded("ok.toml", 'extends = "taiwan-crisis"\nname = "mine"\nmonths = 30\n')
    assert scn.name == "mine" and scn.months == 30


# ------------------------------------------------------------------ the page


@solara.component
def _App():
    from viz.app import Page

    with solara.AppLayout():
        Page()


def _button(rc, label):
    return next(b.widget for b in rc.find(v.Btn) if label in b.widget.children)


def _widgets(rc):
    """Every widget in the rendered tree (Finder.find stops at the first match)."""
    from ipywidgets import Widget

    seen, todo = set(), list(rc.find(Widget).widgets)
    while todo:
        w = todo.pop()
        if id(w) in seen:
            continue
        seen.add(id(w))
        yield w
        for key in w.keys:
            value = getattr(w, key, None)
            for item in value if isinstance(value, list | tuple) else [value]:
                if isinstance(item, Widget):
                    todo.append(item)


def _texts(rc) -> str:
    out = []
    for w in _widgets(rc):
        for key in ("children", "unsafe_innerHTML", "label"):
            value = getattr(w, key, None)
            if isinstance(value, str):
                out.append(value)
            elif isinstance(value, list):
                out += [x for x in value if isinstance(x, str)]
    return " ".join(out)


def _clock(rc) -> str:
    return str(rc.find(v.Html, class_="lanthanide-clock").widget.children[0])


def test_page_steps_the_month_and_the_charts_grow():
    box, rc = solara.render(_App(), handle_error=False)
    assert "month 0 of" in _clock(rc)
    assert sum(isinstance(w, VegaChart) for w in _widgets(rc)) == len(charts.VIEWS)
    step = _button(rc, "Step")
    step.click()
    step.click()
    assert "month 2 of" in _clock(rc) and "2025-02" in _clock(rc)
    for w in (w for w in _widgets(rc) if isinstance(w, VegaChart)):
        assert w.chunk.get("rows") or w.full.get("rows"), w.spec["title"]["text"]
        assert (w.chunk or w.full)["stamp"] == "2025-02"


def test_page_lever_and_reset_start_a_new_run():
    from viz.app import Explorer, Session

    session = Session()

    @solara.component
    def App():
        with solara.AppLayout():
            Explorer(session)

    box, rc = solara.render(App(), handle_error=False)
    for _ in range(3):
        _button(rc, "Step").click()
    before = session.pair.timeseries
    state = next(w for w in _widgets(rc) if isinstance(w, v.Select) and w.label == "State")
    state.v_model = "Japan"
    slider = next(
        w
        for w in _widgets(rc)
        if isinstance(w, v.Slider) and w.label.startswith("stockpile target")
    )
    slider.v_model = slider.max  # days of use: Japan's stockpile target, at its top
    assert session.changes.value == {"countries.Japan.stockpile_target_days": 365.0}
    assert "press Reset" in _texts(rc)
    _button(rc, "Reset").click()
    assert "month 0 of" in _clock(rc) and "press Reset" not in _texts(rc)
    for _ in range(3):
        _button(rc, "Step").click()
    after = session.pair.timeseries

    def stockpile(ts):
        rows = ts[(ts.variable == "stockpile_t") & (ts.run == "scenario")]
        return rows.loc[rows.country == "Japan", "value"].sum()

    assert stockpile(after) > stockpile(before)
    session.close()


def test_page_upload_error_is_shown_and_the_page_keeps_working():
    box, rc = solara.render(_App(), handle_error=False)
    upload = rc.find(TomlUpload).widget
    upload.vue_upload({"name": "bad.toml", "text": "[countries.Japan]\nresolve = 500\n"})
    err = "countries.Japan.resolve: 500.0 is out of range"
    assert err in _texts(rc)
    _button(rc, "Step").click()
    assert "month 1 of" in _clock(rc)
    upload.vue_upload(
        {"name": "mine.toml", "text": 'extends = "taiwan-crisis"\nname = "mine"\nmonths = 30\n'}
    )
    assert "mine, seed" in _clock(rc) and "month 0 of 30" in _clock(rc)
    assert err not in _texts(rc)


def test_repeated_measures_are_one_timeline_line():
    from viz.components import group_events

    events = [
        ("2025-02", "Japan", "stockpile rule-Japan-stockpile"),
        ("2025-02", "United States", "finance United States-finance-1"),
        ("2025-03", "United States", "finance United States-finance-2"),
        ("2026-01", "scenario", "dispute taiwan-dispute"),
    ]
    got = group_events(events)
    assert got[0] == ("2026-01", "2026-01", "scenario", "dispute taiwan-dispute", 1)
    assert ("2025-02", "2025-03", "United States", "finance United States-finance-2", 2) in got
    assert len(got) == 3
