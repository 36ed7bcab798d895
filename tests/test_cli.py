"""The command line end to end: in-process through ``experiments.cli.main`` and as the installed
``lanthanide`` console script in a real subprocess."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from abm.recorder import UNITS
from abm.scenario import build_scenario, builtin_names
from experiments.cli import main
from experiments.runner import run_scenario, simulate

REQUIRED_COLUMNS = ["run", "seed", "date", "variable", "value", "unit"]
REQUIRED_COLUMNS += ["country", "partner", "good", "stage", "segment", "sector"]
OUTPUT_FILES = ("timeseries.parquet", "summary.json", "manifest.json", "events.csv", "headline.png")
REQUIRED_VARIABLES = {
    "price",
    "production_t",
    "consumption_t",
    "exports_t",
    "imports_t",
    "trade_t",
    "china_share",
    "import_share_from_china",
    "inventory_months",
    "stockpile_t",
    "capacity_t_per_year",
    "idle_capacity_t_per_year",
    "bankruptcies",
    "recycled_t",
    "intensity_index",
    "perceived_risk",
    "lost_output_usd",
}
VERDICTS = {"succeeded", "backfired", "mixed", "no_effect"}

QUOTA_SCENARIO = """extends = "baseline-2025"
name = "quota-test"
description = "China caps exports of concentrate and oxide at 20,000 t a year."

[[events]]
id = "test-quota"
type = "export_quota"
date = "2025-03"
exporter = "China"
t_per_year = 20000
"""


def lanthanide_script() -> str:
    """The installed console script next to this interpreter (the CI venv or /tmp/venv)."""
    bindir = Path(sys.executable).parent
    for name in ("lanthanide", "lanthanide.exe"):
        if (bindir / name).exists():
            return str(bindir / name)
    raise AssertionError(f"console script 'lanthanide' not installed in {bindir}")


def run_script(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [lanthanide_script(), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **(env or {})},
    )


def check_outputs(out: Path, months: int, runs: set[str]) -> pd.DataFrame:
    """The five files exist and the table has the required shape; return the table."""
    for name in OUTPUT_FILES:
        assert (out / name).is_file(), name
        assert (out / name).stat().st_size > 0, name
    assert (out / "headline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ts = pd.read_parquet(out / "timeseries.parquet")
    assert set(REQUIRED_COLUMNS) <= set(ts.columns)
    assert set(ts["run"].astype(str).unique()) == runs
    # one row block per calendar month, on the first of the month, none missing
    dates = pd.DatetimeIndex(sorted(ts["date"].unique()))
    assert list(dates) == list(pd.date_range("2025-01-01", periods=months, freq="MS"))
    # each variable has exactly its documented unit
    units = ts.groupby("variable", observed=True)["unit"].agg(lambda u: set(u.astype(str)))
    for var, unit_set in units.items():
        assert unit_set == {UNITS[var]}, var
    price = ts[ts["variable"] == "price"]["value"]
    assert price.notna().all() and (price > 0).all() and price.map(math.isfinite).all()
    share = ts[ts["variable"] == "china_share"]["value"].dropna()
    assert ((share >= 0) & (share <= 1)).all()
    return ts


# ----------------------------------------------------------------------------- a default run


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """``lanthanide run --months 24 --out DIR`` in process (default scenario and firms)."""
    out = tmp_path_factory.mktemp("cli") / "run"
    code = main(["run", "--months", "24", "--out", str(out)])
    return code, out


def test_run_exits_0_and_writes_every_output(default_run):
    code, out = default_run
    assert code == 0
    ts = check_outputs(out, 24, {"scenario", "counterfactual"})
    assert (ts["seed"] == 42).all()
    assert ts["date"].min() == pd.Timestamp("2025-01-01")
    for run in ("scenario", "counterfactual"):
        present = set(ts.loc[ts["run"] == run, "variable"].astype(str).unique())
        missing = REQUIRED_VARIABLES - present
        assert not missing, (run, missing)


def test_restriction_is_reported_in_the_run_and_not_in_the_counterfactual(default_run):
    ts = pd.read_parquet(default_run[1] / "timeseries.parquet")
    restr = ts[ts["variable"] == "restriction"]
    # the Taiwan dispute opens in 2026-01 and China's rule strategy restricts exports to Japan
    assert not restr.empty
    assert set(restr["run"].astype(str)) == {"scenario"}
    assert (restr["country"] == "China").all()
    assert "Japan" in set(restr["partner"].astype(str))
    assert ((restr["value"] > 0) & (restr["value"] <= 1)).all()
    assert restr["date"].min() >= pd.Timestamp("2026-01-01")


def test_summary_json(default_run):
    summary = json.loads((default_run[1] / "summary.json").read_text())
    for key in ("scenario", "seed", "start", "months", "verdict", "concession", "outcomes"):
        assert key in summary, key
    assert summary["scenario"] == "default"
    assert (summary["seed"], summary["start"], summary["months"]) == (42, "2025-01", 24)
    assert summary["verdict"] in VERDICTS
    conc = summary["concession"]
    assert set(conc) == {"obtained", "date"}
    if conc["obtained"]:
        assert re.fullmatch(r"\d{4}-\d{2}", conc["date"]) and "2025-01" <= conc["date"] <= "2026-12"
    else:
        assert conc["date"] is None
    outcomes = summary["outcomes"]
    for name in (
        "coercer_share_mining_end",
        "coercer_revenue_discounted_usd",
        "ex_coercer_capacity_t_per_year",
        "target_dependence_end",
        "target_lost_output_usd",
        "peak_price_multiple",
    ):
        assert name in outcomes, name
    for name, o in outcomes.items():
        assert set(o) == {"run", "counterfactual", "delta"}, name
        if o["run"] is not None and o["counterfactual"] is not None:
            assert o["delta"] == pytest.approx(o["run"] - o["counterfactual"], abs=1e-6), name


def test_manifest_json_and_the_run_can_be_rebuilt_from_it(default_run, canonical):
    out = default_run[1]
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("scenario", "seed", "versions", "git_commit", "months", "firm_agents"):
        assert key in manifest, key
    assert manifest["seed"] == 42 and manifest["months"] == 24
    assert manifest["firm_agents"] == 400
    assert manifest["engine"] == "numpy"  # auto at 400 firms
    assert set(manifest["wall_seconds"]) == {"scenario", "counterfactual"}
    assert all(isinstance(v, int | float) for v in manifest["wall_seconds"].values())
    for pkg in ("mesa", "numpy", "pandas"):
        assert manifest["versions"][pkg]
    assert manifest["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", manifest["git_commit"])
    # the resolved scenario and the seed reproduce the run's table exactly
    scn = build_scenario(manifest["scenario"])
    assert scn.months == 24 and scn.firms == 400
    again = simulate(scn, manifest["seed"]).timeseries
    saved = pd.read_parquet(out / "timeseries.parquet")
    saved = saved[saved["run"] == "scenario"]
    assert len(saved) == len(again)
    assert canonical(saved).equals(canonical(again))


def test_events_csv_lists_who_did_what(default_run):
    events = pd.read_csv(default_run[1] / "events.csv")
    assert list(events.columns) == ["date", "origin", "event"]
    assert events["date"].str.fullmatch(r"\d{4}-\d{2}").all()
    assert events["event"].str.contains("taiwan-dispute").any()
    assert (events["origin"] == "scenario").any()


# ----------------------------------------------------------------------------- other runs


def test_no_counterfactual_and_seed_zero(tmp_path, capsys):
    out = tmp_path / "solo"
    code = main(
        ["run", "baseline-2025", "--months", "12", "--firms", "120", "--seed", "0"]
        + ["--no-counterfactual", "--out", str(out)]
    )
    assert code == 0
    ts = check_outputs(out, 12, {"scenario"})
    assert (ts["seed"] == 0).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"] is None and summary["seed"] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["firm_agents"] == 120
    assert set(manifest["wall_seconds"]) == {"scenario"}
    assert "no counterfactual" in capsys.readouterr().out


def test_default_output_folder_is_a_new_folder_under_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["run", "--months", "6", "--firms", "120", "--no-counterfactual"]
    assert main(args) == 0
    assert main(args) == 0  # a second run never overwrites the first
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 2
    for folder in folders:
        assert folder.name.startswith("default-")
        assert sorted(p.name for p in folder.iterdir()) == sorted(OUTPUT_FILES)
    assert str(folders[0].name) in capsys.readouterr().out


def test_installed_script_runs_a_scenario_file_with_an_export_quota(tmp_path):
    path = tmp_path / "quota.toml"
    path.write_text(QUOTA_SCENARIO)
    out = tmp_path / "quota-run"
    res = run_script("run", str(path), "--months", "24", "--firms", "120", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert "verdict" in res.stdout
    ts = check_outputs(out, 24, {"scenario", "counterfactual"})
    for run in ("scenario", "counterfactual"):
        present = set(ts.loc[ts["run"] == run, "variable"].astype(str).unique())
        assert REQUIRED_VARIABLES <= present, run
    quota = ts[ts["variable"] == "export_quota_t"]
    # the quota is recorded from 2025-03 in the run only (the counterfactual drops it)
    assert set(quota["run"].astype(str)) == {"scenario"}
    assert (quota["country"] == "China").all() and (quota["value"] == 20000).all()
    assert quota["date"].min() == pd.Timestamp("2025-03-01") and quota["date"].nunique() == 22
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"] == "quota-test" and summary["verdict"] in VERDICTS


def test_same_run_in_two_processes_with_different_hash_seeds_is_identical(tmp_path):
    tables = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"h{hash_seed}"
        res = run_script(
            "run",
            "taiwan-crisis",
            "--months",
            "18",
            "--firms",
            "120",
            "--seed",
            "5",
            "--no-counterfactual",
            "--out",
            str(out),
            env={"PYTHONHASHSEED": hash_seed},
        )
        assert res.returncode == 0, res.stderr
        tables.append(pd.read_parquet(out / "timeseries.parquet"))
    assert tables[0].equals(tables[1])


def test_interrupted_write_leaves_no_output_folder(tmp_path, monkeypatch):
    import experiments.charts

    result = run_scenario("baseline-2025", months=12, firms=120, with_counterfactual=False)
    assert result.summary["verdict"] is None  # the Python API mirrors --no-counterfactual
    assert set(result.timeseries["run"].astype(str)) == {"scenario"}

    def broken_chart(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(experiments.charts, "headline_chart", broken_chart)
    out = tmp_path / "runs" / "broken"
    with pytest.raises(RuntimeError, match="disk full"):
        result.write(out)
    assert not out.exists()
    assert list((tmp_path / "runs").iterdir()) == []  # no temporary folder left behind


# ----------------------------------------------------------------------------- bad input


def _malformed(tmp_path):
    path = tmp_path / "malformed.toml"
    path.write_text('name = "x"\n[market\nleakage_share = 0.2\n')
    return [str(path)], "malformed TOML"


def _unknown_field(tmp_path):
    path = tmp_path / "unknown-field.toml"
    path.write_text('extends = "baseline-2025"\n[market]\nleakage = 0.2\n')
    return [str(path)], "market.leakage: unknown field"


def _bad_event(tmp_path):
    path = tmp_path / "bad-event.toml"
    path.write_text('extends = "baseline-2025"\n[[events]]\ntype = "blockade"\ndate = "2025-03"\n')
    return [str(path)], "'blockade' is not an event type"


BAD_INPUT = {
    "unknown-scenario": lambda p: (["no-such-scenario"], "not a built-in scenario"),
    "malformed-toml": _malformed,
    "unknown-field-in-file": _unknown_field,
    "unknown-field-via-set": lambda p: (["--set", "market.nonsense=1"], "market.nonsense"),
    "out-of-range-via-set": lambda p: (
        ["--set", "market.leakage_share=2"],
        "market.leakage_share: 2.0 is out of range; allowed 0 to 1",
    ),
    "wrong-type-via-set": lambda p: (["--set", "months=many"], "months: expected a number"),
    "set-without-equals": lambda p: (["--set", "market.leakage_share"], "KEY=VALUE"),
    "months-not-a-number": lambda p: (["--months", "x"], "'x' is not a whole number"),
    "months-zero": lambda p: (["--months", "0"], "--months"),
    "seed-negative": lambda p: (["--seed", "-3"], "--seed"),
    "firms-far-too-few": lambda p: (["--firms", "5"], "firms"),
    "firms-too-few-for-the-scenario": lambda p: (["--firms", "30"], "too few"),
    "unknown-event-type": _bad_event,
    "unknown-option": lambda p: (["--colour", "red"], "--colour"),
    "workers-three": lambda p: (["--workers", "3"], "--workers: 3 must be 1 or 2"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path, capsys, case):
    args, fragment = BAD_INPUT[case](tmp_path)
    inputs = set(tmp_path.iterdir())
    out = tmp_path / "never"
    code = main(["run", *args, "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.endswith("\n") and captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err
    assert fragment in captured.err
    assert captured.err.startswith("lanthanide")
    assert captured.out == ""
    assert not out.exists()
    assert set(tmp_path.iterdir()) == inputs  # nothing else written either


def test_an_unknown_engine_is_bad_input(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LANTHANIDE_ENGINE", "fortran")
    out = tmp_path / "never"
    code = main(["run", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        "lanthanide: error: LANTHANIDE_ENGINE: 'fortran' is not one of auto, numpy, numba\n"
    )
    assert not out.exists()


def test_a_country_that_is_not_a_table_is_bad_input(tmp_path, capsys):
    out = tmp_path / "never"
    code = main(["run", "--set", "countries.Japan=5", "--out", str(out)])
    assert code == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not out.exists()


def test_installed_script_reports_bad_input_in_one_line(tmp_path):
    out = tmp_path / "never"
    res = run_script("run", "--set", "market.leakage_share=2", "--out", str(out))
    assert res.returncode == 2
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr
    assert "market.leakage_share" in lines[0] and "0 to 1" in lines[0]
    assert res.stdout == ""
    assert not out.exists()


# ----------------------------------------------------------------------------- other commands


def test_scenarios_lists_every_builtin(capsys):
    assert main(["scenarios"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = [line.split()[0] for line in lines if line.strip()]
    assert listed == builtin_names()


def test_validate_accepts_a_good_file_and_rejects_a_bad_one(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text(QUOTA_SCENARIO)
    assert main(["validate", str(good)]) == 0
    out = capsys.readouterr().out
    assert "valid scenario 'quota-test'" in out
    assert main(["validate", "taiwan-crisis"]) == 0
    capsys.readouterr()
    bad = tmp_path / "bad.toml"
    bad.write_text(QUOTA_SCENARIO.replace("t_per_year = 20000", "t_per_year = -5"))
    assert main(["validate", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert "t_per_year: -5.0 is out of range" in captured.err
    assert captured.out == ""


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in ("run", "scenarios", "validate"):
        assert command in out


def test_outcome_table_prints_rounding_noise_as_zero():
    from experiments.cli import _fmt

    assert _fmt(-1e-10) == "0.000"
    assert _fmt(-0.0012) == "-0.001"
    assert _fmt(2.5e9) == "2.50 bn"


def _capacity_frame(by_country: dict[str, float]) -> pd.DataFrame:
    """End-of-run oxide capacity per country, in the long format of ``timeseries.parquet``."""
    rows = [
        {
            "variable": "capacity_t_per_year",
            "country": c,
            "stage": "oxide",
            "date": pd.Timestamp("2030-12-01"),
            "value": v,
        }
        for c, v in by_country.items()
    ]
    return pd.DataFrame(rows).assign(sector=None, segment=None, good="light", partner=None)


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        # every country gained: the leader's share of the total gain
        ({"China": 0.0, "Australia": 3_000.0, "Myanmar": 1_000.0}, "of which Australia 75%"),
        # one up, one down: a share would read 150%, so the leader is named by its own tonnes
        (
            {"China": 0.0, "Australia": 500.0, "Myanmar": -1_500.0},
            "largest change Myanmar -1,500 t/yr",
        ),
    ],
)
def test_capacity_explanation_names_the_largest_mover_sensibly(run, expected):
    from abm.outcomes import explain

    cf = _capacity_frame({"China": 0.0, "Australia": 0.0, "Myanmar": 0.0})
    parts = {
        "share_delta_pp": float("nan"),
        "backfire_tests": {"share_loss": False, "capacity_gain": False, "revenue_loss": False},
        "capacity_gain_share": 0.5,
        "revenue_change_share": 0.0,
    }
    lines = explain(_capacity_frame(run), cf, "Japan", "China", parts, {"obtained": False})
    (line,) = [t for t in lines if t.startswith("capacity outside China")]
    assert line.endswith(expected), line
