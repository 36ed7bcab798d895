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
import os
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import mesa
import pandas as pd

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
) -> Result:
    """Run a scenario (built-in name, TOML path or Scenario) and, by default, its counterfactual.

    Args:
        scenario: what to run.
        seed: random seed (default: the scenario's); the counterfactual uses the same seed.
        months: horizon in months (default: the scenario's).
        firms: total number of firm agents (default: the scenario's).
        overrides: ``KEY=VALUE`` strings with dotted keys, as ``--set`` on the command line.
        with_counterfactual: also run the same scenario with coercive measures removed.

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
    main = simulate(scn, seed, "scenario")
    frames = [main.timeseries]
    walls = {"scenario": round(main.wall_seconds, 4)}
    cf_df = None
    if with_counterfactual:
        cf = simulate(counterfactual(scn), seed, "counterfactual")
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
    summary = summarise(scn, main.timeseries, cf_df)
    manifest = {
        "scenario": scn.to_dict(),
        "scenario_name": scn.name,
        "seed": seed,
        "months": scn.months,
        "start": scn.start,
        "firm_agents": main.firm_agents,
        "counterfactual": with_counterfactual,
        "wall_seconds": walls,
        "engine": main.engine,
        "versions": _versions(),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
    }
    return Result(scn, seed, ts, summary, manifest, main.log)


def summarise(scn: Scenario, run_df: pd.DataFrame, cf_df: pd.DataFrame | None) -> dict:
    """``summary.json`` content: outcomes run vs counterfactual, concession and verdict."""
    r = scn.verdict.discount_rate_per_year
    run_o = compute_outcomes(run_df, scn.target, scn.coercer, r)
    conc = concession_of(run_df, scn.target)
    if cf_df is not None:
        cf_o = compute_outcomes(cf_df, scn.target, scn.coercer, r)
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


__all__ = ["Result", "atomic_dir", "run_scenario", "simulate", "write_outputs"]
