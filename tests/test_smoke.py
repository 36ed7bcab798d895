"""End-to-end smoke tests: a short run of every layer, from scenario file to written outputs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from abm.model import ConservationError, RareEarthModel
from abm.scenario import ScenarioError, builtin_names, counterfactual, load_scenario
from experiments.cli import main
from experiments.runner import run_scenario, simulate


def test_short_default_run_writes_every_output(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--months", "18", "--firms", "120", "--out", str(out)]) == 0
    for name in (
        "timeseries.parquet",
        "summary.json",
        "manifest.json",
        "events.csv",
        "headline.png",
    ):
        assert (out / name).stat().st_size > 0, name
    ts = pd.read_parquet(out / "timeseries.parquet")
    assert set(ts["run"].unique()) == {"scenario", "counterfactual"}
    assert ts["date"].nunique() == 18
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"] in ("succeeded", "backfired", "mixed", "no_effect")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["firm_agents"] == 120
    assert set(manifest["wall_seconds"]) == {"scenario", "counterfactual"}


def test_same_seed_same_table_other_seed_differs():
    scn = load_scenario("taiwan-crisis", months=24, firms=150)
    a = simulate(scn, 3).timeseries
    b = simulate(scn, 3).timeseries
    c = simulate(scn, 4).timeseries
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


@pytest.mark.parametrize("name", builtin_names())
def test_every_builtin_runs_and_conserves(name):
    scn = load_scenario(name, months=30, firms=150)
    for variant in (scn, counterfactual(scn)):
        model = RareEarthModel(variant)
        model.run()  # settlement raises ConservationError on any leak
        assert model.month == 30
        assert np.all(np.isfinite(model.price)) and np.all(model.price > 0)


def test_conservation_error_on_overselling():
    model = RareEarthModel(load_scenario("baseline-2025", months=6, firms=120))
    model.step()
    seller = int(np.flatnonzero(model.firms.stock[: model.P, 0] > 0)[0])
    model.firms.stock[seller, 0] = -1e6  # a seller that has sold what it does not hold
    with pytest.raises(ConservationError):
        model.step()


def test_conservation_error_when_buyers_receive_more_than_was_sold():
    model = RareEarthModel(load_scenario("baseline-2025", months=6, firms=120))
    model.step()
    original = model._clear_markets

    def leaky(orders):
        market = original(orders)
        cl = market["clearings"][3]
        market["clearings"][3] = dataclasses.replace(cl, bought=cl.bought * 1.5)
        return market

    model._clear_markets = leaky
    with pytest.raises(ConservationError):
        model.step()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["run", "no-such-scenario"], "not a built-in scenario"),
        (["run", "--set", "market.leakage_share=2"], "market.leakage_share"),
        (["run", "--set", "nonsense"], "KEY=VALUE"),
        (["run", "--months", "x"], "whole number"),
        (["run", "--firms", "5"], "firms"),
        (["run", "--firms", "30"], "too few"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path, capsys, args, fragment):
    out = tmp_path / "never"
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0] and "Traceback" not in err[0]
    assert not out.exists()


def test_malformed_toml_is_rejected(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\n[market\n")
    assert main(["validate", str(bad)]) == 2
    assert "malformed TOML" in capsys.readouterr().err
    with pytest.raises(ScenarioError):
        load_scenario(str(bad))


def test_python_api_mirrors_cli():
    result = run_scenario("baseline-2025", months=12, firms=100, with_counterfactual=False)
    assert result.summary["verdict"] is None
    assert set(result.timeseries["run"].unique()) == {"scenario"}
