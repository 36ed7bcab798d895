"""Sweeps on real back ends: local processes, Dask scheduler and worker, shards, resume."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from experiments.cli import main
from experiments.sweep import SweepError, collect, load_sweep, run_sweep, tasks_for

SWEEP = """
name = "small"
base = "baseline-2025"
months = 12
firms = 100
replicates = 2
master_seed = 5
design = "full_factorial"
steps = 2
outcomes = ["coercer_share_mining_end", "target_lost_output_usd"]
[levers]
"countries.Japan.stockpile_target_days" = {{ min = 0, max = 120 }}
[uncertainties]
"market.leakage_share" = {{ values = {leak} }}
"""


def sweep_file(tmp_path, leak="[0.0, 0.3]", extra="") -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP.format(leak=leak) + extra)
    return path


def results(out: Path) -> pd.DataFrame:
    df = collect(out)
    return df.drop(columns=["wall_seconds"]).sort_values("run_id").reset_index(drop=True)


def test_two_workers_give_the_same_rows_as_one(tmp_path):
    sw = load_sweep(sweep_file(tmp_path))
    run_sweep(sw, tmp_path / "one", workers=1, progress=False)
    run_sweep(sw, tmp_path / "two", workers=2, progress=False)
    a, b = results(tmp_path / "one"), results(tmp_path / "two")
    assert len(a) == 8 and (a["status"] == "ok").all()
    pd.testing.assert_frame_equal(a, b)


def test_shards_plus_collect_equal_the_whole(tmp_path):
    sw = load_sweep(sweep_file(tmp_path))
    run_sweep(sw, tmp_path / "whole", workers=1, progress=False)
    for i in (1, 2):
        run_sweep(sw, tmp_path / "sharded" / f"s{i}", workers=1, shard_of=(i, 2), progress=False)
    pd.testing.assert_frame_equal(results(tmp_path / "whole"), results(tmp_path / "sharded"))


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    # the middle value is not a number: validation checks the ends, the run itself fails
    sw = load_sweep(sweep_file(tmp_path, leak='[0.0, "lots", 0.3]'))
    counts = run_sweep(sw, tmp_path / "out", workers=2, progress=False)
    df = results(tmp_path / "out")
    assert counts["failed"] == 4 and len(df) == 12
    failed = df[df["status"] == "failed"]
    assert (failed["market.leakage_share"] == "lots").all()
    assert failed["error"].str.contains("leakage_share").all()


def test_killed_sweep_resumes_with_every_run_exactly_once(tmp_path):
    path = sweep_file(tmp_path, leak="[0.0, 0.1, 0.2, 0.3]", extra="")
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "experiments.cli",
        "sweep",
        str(path),
        "--out",
        str(out),
        "--workers",
        "1",
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "LANTHANIDE_SWEEP_BATCH": "1"},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.glob("results/part-*"))) < 3:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(list(out.glob("results/part-*.parquet")))
    assert 0 < before < 16, "the sweep should have been killed part-way"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "2", "--resume"]) == 0
    df = collect(out)
    assert len(df) == 16 and df["run_id"].is_unique
    assert set(df["run_id"]) == {t.run_id for t in tasks_for(load_sweep(path))}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dask_scheduler_and_worker_give_the_same_rows_as_local(tmp_path):
    sw = load_sweep(sweep_file(tmp_path))
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    bin_dir = Path(sys.executable).parent
    sched = subprocess.Popen(
        [
            str(bin_dir / "dask"),
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        time.sleep(2.0)
        worker = subprocess.Popen(
            [
                str(bin_dir / "dask"),
                "worker",
                address,
                "--nworkers",
                "1",
                "--nthreads",
                "1",
                "--no-dashboard",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        run_sweep(sw, tmp_path / "dask", scheduler=address, progress=False)
        run_sweep(sw, tmp_path / "local", workers=2, progress=False)
        pd.testing.assert_frame_equal(results(tmp_path / "dask"), results(tmp_path / "local"))
    finally:
        for p in (worker, sched):
            if p is not None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()


def test_bad_sweep_files_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'base = "baseline-2025"\ndesign = "random"\n[levers]\n"market.leakage_share" '
        "= { min = 0, max = 0.5 }\n"
    )
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "design" in err[0]
    bad.write_text(
        'base = "baseline-2025"\n[levers]\n"market.leakage_share" = { min = 0, max = 5 }\n'
    )
    with pytest.raises(SweepError, match="leakage_share"):
        load_sweep(bad)
    assert main(["sweep", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()
