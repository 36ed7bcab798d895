"""Sweeps on real back ends (local processes, a Dask scheduler and worker, shards), resume
after SIGKILL, failed runs, validation, and analysis of the results tables."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.analyze import prim
from experiments.cli import main
from experiments.sweep import SweepError, collect, load_sweep, run_sweep, tasks_for

SWEEP = """
name = "small"
base = "baseline-2025"
months = {months}
firms = 100
replicates = {replicates}
master_seed = 5
design = "full_factorial"
steps = 2
outcomes = ["coercer_share_mining_end", "target_lost_output_usd", "target_stockpile_t_end"]
[levers]
"countries.Japan.stockpile_target_days" = {{ min = 0, max = 120 }}
[uncertainties]
"market.leakage_share" = {{ values = {leak} }}
"""


def sweep_file(tmp_path, leak="[0.0, 0.3]", months=12, replicates=2, extra="") -> Path:
    path = Path(tmp_path) / "sweep.toml"
    path.write_text(SWEEP.format(leak=leak, months=months, replicates=replicates) + extra)
    return path


def results(out: Path) -> pd.DataFrame:
    df = collect(out)
    return df.drop(columns=["wall_seconds"]).sort_values("run_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The small sweep (8 runs) on one local worker: what every other back end must match."""
    tmp = tmp_path_factory.mktemp("reference")
    path = sweep_file(tmp)
    run_sweep(load_sweep(path), tmp / "one", workers=1, progress=False)
    df = results(tmp / "one")
    assert len(df) == 8 and (df["status"] == "ok").all() and df["run_id"].is_unique
    return path, tmp / "one", df


def test_two_local_workers_give_the_same_rows_as_one(reference, tmp_path):
    path, _, expected = reference
    run_sweep(load_sweep(path), tmp_path / "two", workers=2, progress=False)
    pd.testing.assert_frame_equal(results(tmp_path / "two"), expected)


def test_a_pool_of_one_worker_gives_the_same_rows_as_in_process(reference, tmp_path, monkeypatch):
    path, _, expected = reference
    monkeypatch.setenv("LANTHANIDE_SWEEP_POOL", "1")
    run_sweep(load_sweep(path), tmp_path / "pool1", workers=1, progress=False)
    pd.testing.assert_frame_equal(results(tmp_path / "pool1"), expected)


def test_two_shards_plus_collect_equal_the_whole(reference, tmp_path):
    path, _, expected = reference
    for i in (1, 2):
        out = tmp_path / "sharded" / f"s{i}"
        assert (
            main(["sweep", str(path), "--out", str(out), "--shard", f"{i}/2", "--workers", "1"])
            == 0
        )
    assert main(["sweep", "collect", str(tmp_path / "sharded")]) == 0
    merged = pd.read_parquet(tmp_path / "sharded" / "results.parquet")
    merged = merged.drop(columns=["wall_seconds"]).sort_values("run_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(merged, expected)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on port {port}")


@pytest.mark.parametrize("settings", ["dask defaults", "shipped sweep settings"])
def test_dask_scheduler_and_worker_give_the_same_rows_as_local(reference, tmp_path, settings):
    from experiments.sweep import DASK_CONFIG_DIR

    path, _, expected = reference
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).parent / "dask")
    env = {k: v for k, v in os.environ.items() if k != "DASK_CONFIG"}
    if settings == "shipped sweep settings":
        env["DASK_CONFIG"] = str(DASK_CONFIG_DIR)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    sched = subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        **quiet,
    )
    worker = None
    try:
        _wait_for_port(port)
        worker = subprocess.Popen(
            [dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
            **quiet,
        )
        out = tmp_path / "dask"
        assert main(["sweep", str(path), "--out", str(out), "--scheduler", address]) == 0
        pd.testing.assert_frame_equal(results(out), expected)
        from distributed import Client

        with Client(address, timeout="30s") as client:  # the worker read the settings file
            profiling = client.run(lambda dask_worker: "profile" in dask_worker.periodic_callbacks)
        assert list(profiling.values()) == [settings == "dask defaults"]
    finally:
        for p in (worker, sched):
            if p is not None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path, capsys):
    # the middle value is not a number: validation checks the ends, the run itself fails
    sw = load_sweep(sweep_file(tmp_path, leak='[0.0, "lots", 0.3]', replicates=1, months=6))
    counts = run_sweep(sw, tmp_path / "out", workers=2, progress=True)
    df = results(tmp_path / "out")
    assert counts["failed"] == 2 and len(df) == 6
    failed = df[df["status"] == "failed"]
    assert (failed["market.leakage_share"] == "lots").all()
    assert failed["error"].str.contains("leakage_share").all()
    assert (df.loc[df["status"] == "ok", "verdict"] == "no_effect").all()
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "6/6 runs done, 2 failed" in last and "runs/s" in last and "left" in last


def test_killed_sweep_resumes_with_every_run_exactly_once(tmp_path):
    path = sweep_file(tmp_path, leak="[0.0, 0.1, 0.2, 0.3]", months=6)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "experiments.cli", "sweep", str(path), "--out", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "LANTHANIDE_SWEEP_BATCH": "1"},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.glob("results/part-*.parquet"))) < 3:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(list(out.glob("results/part-*.parquet")))
    assert 0 < before < 16, "the sweep should have been killed part-way"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "2"]) == 2  # needs --resume
    assert main(["sweep", str(path), "--out", str(out), "--workers", "2", "--resume"]) == 0
    df = collect(out)
    assert len(df) == 16 and df["run_id"].is_unique and (df["status"] == "ok").all()
    assert set(df["run_id"]) == {t.run_id for t in tasks_for(load_sweep(path))}
    assert not list(out.glob("**/.*.tmp"))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('design = "random"\n', "design"),
        ("replicates = 0\n", "replicates"),
        ('[levers]\n"market.leakage_share" = { min = 0, max = 5 }\n', "leakage_share"),
        ('[levers]\n"market.no_such_key" = { min = 0, max = 1 }\n', "no_such_key"),
        ('[goal]\noutcome = "target_lost_output_usd"\nbelow = "low"\n', "goal.below"),
        ('[goal]\noutcome = "price"\nbelow = 1\n', "goal.outcome"),
    ],
)
def test_bad_sweep_files_are_one_line_errors_and_leave_nothing(tmp_path, capsys, body, field):
    bad = tmp_path / "bad.toml"
    lever = '[levers]\n"market.leakage_share" = { min = 0, max = 0.5 }\n'
    head = 'base = "baseline-2025"\noutcomes = ["target_lost_output_usd"]\n'
    bad.write_text(head + body + ("" if "[levers]" in body else lever))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and field in err[0] and "Traceback" not in err[0]
    assert main(["sweep", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()
    with pytest.raises(SweepError):
        load_sweep(bad)


def test_built_in_sweeps_validate():
    for name in ("stockpile-vs-length", "when-coercion-backfires"):
        assert main(["validate", name]) == 0
        assert len(tasks_for(load_sweep(name))) > 50


def test_analyze_a_sweep_folder(reference, tmp_path, capsys):
    _, out, _ = reference
    copy = tmp_path / "sweep"
    shutil.copytree(out, copy)
    assert main(["analyze", str(copy)]) == 0
    a = copy / "analysis"
    by_factor = pd.read_csv(a / "by_factor.csv")
    assert set(by_factor["factor"]) == {
        "countries.Japan.stockpile_target_days",
        "market.leakage_share",
    }
    assert by_factor["runs"].sum() == 2 * 8 and (by_factor["share_no_effect"] == 1.0).all()
    page = (a / "report.html").read_text()
    assert page.count("src='data:image/png;base64,") >= 2
    assert "http://" not in page and "https://" not in page
    assert (a / "verdicts_by_factor.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["analyze", str(tmp_path / "nothing-here")]) == 2


@pytest.mark.parametrize(("design", "samples"), [("morris", 3), ("sobol", 4)])
def test_analyze_gives_salib_indices_and_a_goal(tmp_path, design, samples):
    path = tmp_path / "gsa.toml"
    path.write_text(
        f'base = "baseline-2025"\nmonths = 3\nfirms = 60\ndesign = "{design}"\n'
        f"samples = {samples}\n"
        'outcomes = ["target_stockpile_t_end", "coercer_share_mining_end"]\n'
        '[goal]\noutcome = "target_stockpile_t_end"\npart = "run"\nabove = 2000\n'
        '[levers]\n"countries.Japan.stockpile_t.light" = { min = 0, max = 5000 }\n'
        '[uncertainties]\n"market.leakage_share" = { min = 0.0, max = 0.4 }\n'
    )
    out = tmp_path / "out"
    run_sweep(load_sweep(path), out, workers=1, progress=False)
    assert main(["analyze", str(out)]) == 0
    sens = pd.read_csv(out / "analysis" / "sensitivity.csv")
    col = "mu_star" if design == "morris" else "ST"
    stock = sens[sens["outcome"] == "target_stockpile_t_end.run"].set_index("factor")[col]
    # the stock Japan starts with drives the stock it ends with; leakage barely does
    assert stock["countries.Japan.stockpile_t.light"] > 5 * abs(stock["market.leakage_share"])
    summary = json.loads((out / "analysis" / "summary.json").read_text())
    assert 0 < summary["goal"]["share_met"] < 1
    box = pd.DataFrame(summary["prim"]["goal"]["box"])
    assert "countries.Japan.stockpile_t.light" in set(box["factor"])


def test_prim_finds_a_planted_box():
    rng = np.random.default_rng(3)
    n = 2000
    x = pd.DataFrame(
        {
            "a": rng.uniform(0, 1, n),
            "b": rng.uniform(0, 1, n),
            "noise": rng.uniform(0, 1, n),
            "kind": rng.choice(["p", "q", "r"], n),
        }
    )
    y = ((x["a"] > 0.6) & (x["b"] < 0.5) & (x["kind"] != "r")).to_numpy(dtype=float)
    res = prim(x, y, min_coverage=0.8)
    limits = {(r["factor"], r["kind"]): r["value"] for r in res.box.to_dict("records")}
    assert set(limits) == {("a", "min"), ("b", "max"), ("kind", "levels")}
    assert abs(limits[("a", "min")] - 0.6) < 0.05 and abs(limits[("b", "max")] - 0.5) < 0.05
    assert limits[("kind", "levels")] == "p, q"
    assert res.stats["density"] > 0.9 and res.stats["coverage"] >= 0.8


def test_analyze_a_run_folder(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "baseline-2025", "--months", "3", "--firms", "60", "--out", str(out)]) == 0
    assert main(["analyze", str(out)]) == 0
    table = pd.read_csv(out / "analysis" / "outcomes.csv")
    assert {"outcome", "run", "counterfactual", "delta"} <= set(table.columns)
    assert "target_lost_output_usd" in set(table["outcome"])
    page = (out / "analysis" / "report.html").read_text()
    assert "data:image/png;base64," in page and "https://" not in page


def test_the_sweep_example_in_the_guide_validates(tmp_path):
    import re

    text = (Path(__file__).resolve().parent.parent / "docs" / "SWEEPS.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
    assert blocks
    for k, block in enumerate(blocks):
        path = tmp_path / f"example{k}.toml"
        path.write_text(block)
        assert len(tasks_for(load_sweep(path))) > 0
