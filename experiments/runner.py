"""Run a scenario and its counterfactual; write tidy outputs atomically.

The Python API mirrors ``lanthanide run``::

    from experiments import run_scenario
    result = run_scenario("taiwan-crisis", seed=1, months=120)
    result.summary["verdict"]
    result.timeseries.query("variable == 'price' and segment == 'world'")
    result.write("runs/taiwan")
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import mesa
import pandas as pd

from abm.engine import compile_note_given
from abm.model import RareEarthModel
from abm.outcomes import compute_outcomes, concession_of, explain, paired, verdict_parts
from abm.scenario import Scenario, counterfactual, load_scenario


@dataclass
class Simulation:
    """One simulated run: its table, the time it took and what it did."""

    timeseries: pd.DataFrame
    wall_seconds: float
    firm_agents: int
    log: list = field(default_factory=list)
    engine: str = "numpy"  # abm.engine: a speed setting, the same results on either
    outcomes: dict | None = None  # compute_outcomes of the table, where it was computed early


def simulate(scenario: Scenario, seed: int, run: str = "scenario") -> Simulation:
    """Build the model, step it to the horizon and return its time series.

    The model's entry in Mesa's class-level agent registry is removed afterwards (Mesa 3.3
    otherwise keeps every model alive through ``Agent._ids``).
    """
    model = RareEarthModel(scenario, seed=seed, run=run)
    t0 = time.perf_counter()
    model.run()
    wall = time.perf_counter() - t0
    df = model.recorder.frame(model.dates)
    sim = Simulation(
        df,
        wall,
        model.firms.n,
        [(model.date_of(m), who, text) for m, who, text in model.policy.log],
        model.engine,
    )
    mesa.Agent._ids.pop(model, None)
    return sim


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on (Linux)
    except AttributeError:
        return os.cpu_count() or 1


def pair_workers(workers: int | None = None) -> int:
    """How many processes run a scenario and its counterfactual: 1 or 2.

    The two runs are independent (each model owns its seeded generator), so on two cores they
    can run at the same time: the counterfactual in a child process forked before either model
    is built, the scenario here. ``None`` picks 2 where that is safe and can help: on Linux
    (fork; macOS and Windows start processes by spawning, which re-imports everything), with
    at least two usable cores, from a process that multiprocessing did not start (a pool's
    worker, as in sweeps and comparisons, whose pool spreads the runs over the cores already)
    and that runs no other Python thread (forking a threaded process, such as a web server or
    a Dask worker, can copy a lock some other thread holds). ``1`` always runs them one after
    the other; ``2`` asks for the child wherever fork exists.

    Raises:
        ValueError: ``workers`` is not None, 1 or 2.
    """
    if workers is not None and (type(workers) is not int or workers not in (1, 2)):
        raise ValueError(f"workers must be 1 or 2 (processes for the pair), got {workers!r}")
    can_fork = "fork" in multiprocessing.get_all_start_methods()
    if workers == 2:
        return 2 if can_fork else 1
    if workers == 1:
        return 1
    safe = (
        sys.platform.startswith("linux")
        and can_fork
        and _usable_cores() >= 2
        and multiprocessing.parent_process() is None
        and threading.active_count() == 1
    )
    return 2 if safe else 1


def _run_outcomes(scn: Scenario, df: pd.DataFrame) -> dict[str, float]:
    """``compute_outcomes`` of one run's table, with the scenario's target, coercer and rate."""
    return compute_outcomes(df, scn.target, scn.coercer, scn.verdict.discount_rate_per_year)


def _simulate_in_child(conn, scenario: Scenario, seed: int, run: str, judged: Scenario) -> None:
    """The child's side of a paired run: simulate, send the result (or the error) back.

    The child also computes its run's outcomes (``Simulation.outcomes``, with the target,
    coercer and discount rate of ``judged``, the scenario whose summary this is), the
    counterfactual's half of the summary, while the parent computes the scenario's: the same
    function on the same table, so the same floats (pickled exactly).
    """
    # both runs have the same firms, so the same engine: where numba compiles its kernels for
    # the first time on this machine, the parent says so (once), not the child too
    compile_note_given()
    try:
        sim = simulate(scenario, seed, run)
        sim.outcomes = _run_outcomes(judged, sim.timeseries)
        out = ("ok", sim)
    except BaseException as exc:  # the parent raises it
        out = ("error", exc)
    try:
        conn.send(out)
    except Exception as exc:  # an error that does not pickle: its text
        conn.send(("error", RuntimeError(f"{type(out[1]).__name__}: {out[1]} ({exc})")))
    finally:
        conn.close()


def _simulate_pair(
    scenario: Scenario, cf_scenario: Scenario, seed: int
) -> tuple[Simulation, Simulation]:
    """The scenario here and its counterfactual in a forked child, at the same time."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(
        target=_simulate_in_child,
        args=(send, cf_scenario, seed, "counterfactual", scenario),
        name="lanthanide-counterfactual",
    )
    child.start()
    send.close()  # the child holds the sending end: EOF here if it dies
    try:
        main = simulate(scenario, seed, "scenario")
        main.outcomes = _run_outcomes(scenario, main.timeseries)  # while the child does its own
        try:
            status, payload = receive.recv()
        except EOFError:
            child.join()
            raise RuntimeError(
                f"the counterfactual's process ended without a result (exit code "
                f"{child.exitcode}); run with workers=1 to see its error here"
            ) from None
        child.join()
    finally:
        if child.is_alive():  # the scenario failed or was interrupted: stop the child too
            child.kill()
            child.join()
        receive.close()
    if status == "error":
        raise payload
    return main, payload


@dataclass
class Result:
    """A run paired with its counterfactual."""

    scenario: Scenario
    seed: int
    timeseries: pd.DataFrame
    summary: dict
    manifest: dict
    events: list

    def write(self, out_dir: str | Path) -> Path:
        """Write all outputs into ``out_dir`` atomically (see :func:`write_outputs`)."""
        return write_outputs(self, out_dir)


def run_scenario(
    scenario: str | Scenario = "default",
    *,
    seed: int | None = None,
    months: int | None = None,
    firms: int | None = None,
    overrides: list[str] | None = None,
    with_counterfactual: bool = True,
    workers: int | None = None,
) -> Result:
    """Run a scenario (built-in name, TOML path or Scenario) and, by default, its counterfactual.

    Args:
        scenario: what to run.
        seed: random seed (default: the scenario's); the counterfactual uses the same seed.
        months: horizon in months (default: the scenario's).
        firms: total number of firm agents (default: the scenario's).
        overrides: ``KEY=VALUE`` strings with dotted keys, as ``--set`` on the command line.
        with_counterfactual: also run the same scenario with coercive measures removed.
        workers: processes for the pair, 1 or 2 (default: 2 where it is safe and can help;
            see :func:`pair_workers`). The results are the same either way.

    Returns:
        The paired result.
    """
    if isinstance(scenario, Scenario):
        scn = scenario
        if overrides or months or firms or seed is not None:
            raw = scn.to_dict()
            from abm.scenario import apply_overrides, build_scenario

            raw = apply_overrides(raw, overrides)
            for k, v in (("months", months), ("firms", firms), ("seed", seed)):
                if v is not None:
                    raw[k] = v
            scn = build_scenario(raw)
    else:
        scn = load_scenario(scenario, overrides, months=months, firms=firms, seed=seed)
    seed = scn.seed
    procs = pair_workers(workers) if with_counterfactual else 1
    if procs == 2:
        main, cf = _simulate_pair(scn, counterfactual(scn), seed)
    else:
        main = simulate(scn, seed, "scenario")
        cf = simulate(counterfactual(scn), seed, "counterfactual") if with_counterfactual else None
    frames = [main.timeseries]
    walls = {"scenario": round(main.wall_seconds, 4)}
    cf_df = None
    if cf is not None:
        frames.append(cf.timeseries)
        walls["counterfactual"] = round(cf.wall_seconds, 4)
        cf_df = cf.timeseries
    ts = pd.concat(frames, ignore_index=True)
    runs = ["scenario", "counterfactual"]
    dtype = ts["run"].dtype
    # both runs' tables have this type already (abm.recorder), which concat keeps; the check
    # compares the categories' order too (equality of unordered categorical types does not)
    if not (isinstance(dtype, pd.CategoricalDtype) and list(dtype.categories) == runs):
        ts["run"] = pd.Categorical(ts["run"].astype(str), categories=runs)
    # (a paired run's processes computed each run's outcomes already, side by side)
    summary = summarise(
        scn, main.timeseries, cf_df, main.outcomes, cf.outcomes if cf is not None else None
    )
    manifest = {
        "scenario": scn.to_dict(),
        "scenario_name": scn.name,
        "seed": seed,
        "months": scn.months,
        "start": scn.start,
        "firm_agents": main.firm_agents,
        "counterfactual": with_counterfactual,
        "wall_seconds": walls,
        "processes": procs,
        "engine": main.engine,
        "versions": _versions(),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
    }
    return Result(scn, seed, ts, summary, manifest, main.log)


def summarise(
    scn: Scenario,
    run_df: pd.DataFrame,
    cf_df: pd.DataFrame | None,
    run_outcomes: dict[str, float] | None = None,
    cf_outcomes: dict[str, float] | None = None,
) -> dict:
    """``summary.json`` content: outcomes run vs counterfactual, concession and verdict.

    ``run_outcomes`` and ``cf_outcomes``, where given, are the two tables' ``compute_outcomes``
    computed already (by a paired run's two processes); otherwise they are computed here.
    """
    run_o = run_outcomes if run_outcomes is not None else _run_outcomes(scn, run_df)
    conc = concession_of(run_df, scn.target)
    if cf_df is not None:
        cf_o = cf_outcomes if cf_outcomes is not None else _run_outcomes(scn, cf_df)
        parts = verdict_parts(run_o, cf_o, conc["obtained"], scn.verdict)
        v = parts["verdict"]
        tests = parts["backfire_tests"]
        why = explain(run_df, cf_df, scn.target, scn.coercer, parts, conc)
    else:
        cf_o = {k: float("nan") for k in run_o}
        v, tests, why = None, None, []
    return {
        "scenario": scn.name,
        "seed": scn.seed,
        "start": scn.start,
        "months": scn.months,
        "target": scn.target,
        "coercer": scn.coercer,
        "verdict": v,
        "backfire_tests": tests,
        "explanation": why,
        "concession": conc,
        "outcomes": paired(run_o, cf_o),
    }


def _versions() -> dict:
    out = {}
    for pkg in ("lanthanide", "mesa", "numpy", "numba", "pandas", "pyarrow", "matplotlib"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        res = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def atomic_dir(out: str | Path, write) -> Path:
    """Call ``write(tmp)`` on a hidden temporary folder beside ``out``, then move it into place.

    When all files are complete the folder is renamed to ``out`` (or, if ``out`` already
    exists, each file is moved in with an atomic rename). If ``write`` fails, nothing is left.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        write(tmp)
        if not out.exists():
            os.replace(tmp, out)
        else:
            for f in tmp.iterdir():
                os.replace(f, out / f.name)
            tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def write_outputs(result: Result, out_dir: str | Path) -> Path:
    """Write timeseries.parquet, summary.json, manifest.json, events.csv and headline.png.

    Written atomically (see :func:`atomic_dir`): an interrupted write leaves no partial output.
    """
    from experiments.charts import headline_chart

    def write(tmp: Path) -> None:
        result.timeseries.to_parquet(tmp / "timeseries.parquet", index=False)
        (tmp / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
        (tmp / "manifest.json").write_text(
            json.dumps(result.manifest, indent=2, default=str) + "\n"
        )
        pd.DataFrame(result.events, columns=["date", "origin", "event"]).to_csv(
            tmp / "events.csv", index=False
        )
        headline_chart(result.timeseries, result.summary, tmp / "headline.png")

    return atomic_dir(out_dir, write)


__all__ = ["Result", "atomic_dir", "pair_workers", "run_scenario", "simulate", "write_outputs"]
