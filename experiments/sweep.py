"""Sweeps: experimental designs over levers and uncertainties, run anywhere, streamed to Parquet.

A sweep file (TOML) names a base scenario, the **levers** (policy choices) and **uncertainties**
(outside forces) to vary as scenario keys with ranges or value lists, a design
(``full_factorial``, ``latin_hypercube``, ``sobol``, ``morris``), the number of replicates (seeds
spawned from one ``SeedSequence``), the horizon and the outcomes to keep::

    name = "stockpile-vs-length"
    base = "taiwan-crisis"
    months = 120
    replicates = 3
    design = "latin_hypercube"
    samples = 16

    [levers]
    "countries.Japan.stockpile_target_days" = { min = 0, max = 365 }

    [uncertainties]
    "countries.China.rule_lift_after_months" = { values = [6, 12, 24, 48] }

Every run is one design point and one replicate seed, paired with its counterfactual; its id
is a hash of everything that determines it, so any back end (local processes, a Dask cluster,
batch-array shards) produces the same rows. Results stream to ``DIR/results/`` as Parquet parts
written atomically; ``--resume`` skips runs already recorded, so a sweep killed at any moment
and resumed ends with every run present exactly once. A run that raises is recorded with its
error and the sweep goes on.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import sys
import time
import tomllib
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from abm.scenario import ScenarioError, apply_overrides, build_scenario, resolve_raw

DESIGNS = ("full_factorial", "latin_hypercube", "sobol", "morris")
DEFAULT_OUTCOMES = (
    "coercer_share_mining_end",
    "coercer_revenue_discounted_usd",
    "target_dependence_end",
    "ex_coercer_capacity_t_per_year",
    "target_lost_output_usd",
    "peak_price_multiple",
    "target_stockpile_t_end",
)
TOP_FIELDS = {
    "name",
    "description",
    "base",
    "months",
    "firms",
    "replicates",
    "master_seed",
    "design",
    "samples",
    "steps",
    "outcomes",
    "timeseries",
    "levers",
    "uncertainties",
    "goal",
}
SWEEPS_DIR = Path(__file__).resolve().parent.parent / "scenarios" / "sweeps"


class SweepError(ScenarioError):
    """A malformed sweep file; the message names the field and what is allowed."""


@dataclass(frozen=True)
class Factor:
    """One varied scenario key: a list of values, or a numeric range."""

    key: str
    role: str  # "lever" or "uncertainty"
    values: tuple | None = None
    lo: float | None = None
    hi: float | None = None
    integer: bool = False

    def from_unit(self, u: float):
        """Map a number in [0, 1) to a value of this factor."""
        if self.values is not None:
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        x = self.lo + u * (self.hi - self.lo)
        return int(round(x)) if self.integer else float(x)

    def grid(self, steps: int) -> tuple:
        """Values for a full factorial design."""
        if self.values is not None:
            return self.values
        xs = np.linspace(self.lo, self.hi, steps)
        return tuple(int(round(x)) for x in xs) if self.integer else tuple(float(x) for x in xs)


@dataclass(frozen=True)
class Sweep:
    """A validated sweep."""

    name: str
    base: str
    months: int
    firms: int | None
    replicates: int
    master_seed: int
    design: str
    samples: int
    steps: int
    outcomes: tuple[str, ...]
    timeseries: tuple[str, ...]
    factors: tuple[Factor, ...]
    raw: dict = field(compare=False, repr=False)

    @property
    def seeds(self) -> list[int]:
        """One seed per replicate, spawned from the master seed (common to all points)."""
        ss = np.random.SeedSequence(self.master_seed).spawn(self.replicates)
        return [int(s.generate_state(1)[0]) for s in ss]


def _err(msg: str) -> SweepError:
    return SweepError(msg)


def _int(raw, key, lo, hi, default):
    v = raw.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _err(f"{key}: {v!r} is not allowed; a whole number from {lo} to {hi}")
    return v


def builtin_sweeps() -> list[str]:
    """Names of the built-in sweep files in ``scenarios/sweeps/``."""
    return sorted(p.stem for p in SWEEPS_DIR.glob("*.toml"))


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file (every factor is checked against the base scenario).

    Args:
        path: a TOML file, or the name of a built-in sweep (see :func:`builtin_sweeps`).

    Raises:
        SweepError: naming the field and what is allowed.
    """
    path = Path(path)
    if not path.is_file() and str(path) in builtin_sweeps():
        path = SWEEPS_DIR / f"{path}.toml"
    if not path.is_file():
        raise _err(
            f"sweep: file {str(path)!r} not found; built-in sweeps: {', '.join(builtin_sweeps())}"
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise _err(f"{path}: malformed TOML: {exc}") from None
    for key in raw:
        if key not in TOP_FIELDS:
            raise _err(f"{key}: unknown field; allowed: {', '.join(sorted(TOP_FIELDS))}")
    if not isinstance(raw.get("base"), str):
        raise _err("base: missing; give a built-in scenario name or a TOML path")
    base = raw["base"]
    if base.endswith(".toml") and not Path(base).is_absolute():
        base = str(path.parent / base)
    design = raw.get("design", "latin_hypercube")
    if design not in DESIGNS:
        raise _err(f"design: {design!r} is not allowed; allowed: {', '.join(DESIGNS)}")
    months = _int(raw, "months", 1, 1200, 120)
    firms = raw.get("firms")
    if firms is not None:
        firms = _int(raw, "firms", 20, 1_000_000, 400)
    replicates = _int(raw, "replicates", 1, 100_000, 1)
    master_seed = _int(raw, "master_seed", 0, 2**63 - 1, 0)
    samples = _int(raw, "samples", 1, 1_000_000, 16)
    steps = _int(raw, "steps", 2, 1000, 3)
    if design == "sobol" and samples & (samples - 1):
        raise _err(f"samples: {samples} must be a power of two for the sobol design")
    outcomes = tuple(raw.get("outcomes", DEFAULT_OUTCOMES))
    known = set(_outcome_names())
    for o in outcomes:
        if o not in known:
            raise _err(f"outcomes: {o!r} is not an outcome; allowed: {', '.join(sorted(known))}")
    from abm.recorder import VARIABLES

    timeseries = tuple(raw.get("timeseries", ()))
    for v in timeseries:
        if v not in VARIABLES:
            raise _err(f"timeseries: {v!r} is not a variable; allowed: {', '.join(VARIABLES)}")
    _check_goal(raw.get("goal"), outcomes)
    factors = []
    for role, table in (
        ("lever", raw.get("levers", {})),
        ("uncertainty", raw.get("uncertainties", {})),
    ):
        if not isinstance(table, dict):
            raise _err(f"{role}s: expected a table of scenario keys")
        for key, spec in table.items():
            factors.append(_factor(key, role, spec))
    if not factors:
        raise _err("levers, uncertainties: give at least one factor to vary")
    if design != "full_factorial":
        for f in factors:
            if f.values is None and f.lo is None:
                raise _err(f"{f.key}: needs min and max or values")
    scenario = resolve_raw(base)  # ScenarioError if the base is unknown
    for f in factors:  # each factor at both ends must give a valid scenario
        for v in {f.values[0], f.values[-1]} if f.values is not None else {f.lo, f.hi}:
            try:
                build_scenario(apply_overrides(scenario, [f"{f.key}={_toml(v)}"]))
            except ScenarioError as exc:
                raise _err(f"{f.role}s.{f.key}: {exc}") from None
    return Sweep(
        name=str(raw.get("name", path.stem)),
        base=base,
        months=months,
        firms=firms,
        replicates=replicates,
        master_seed=master_seed,
        design=design,
        samples=samples,
        steps=steps,
        outcomes=outcomes,
        timeseries=timeseries,
        factors=tuple(factors),
        raw=raw,
    )


def _check_goal(goal, outcomes: tuple[str, ...]) -> None:
    """The optional ``[goal]`` table: ``outcome``, ``part`` and ``below`` or ``above``."""
    if goal is None:
        return
    if not isinstance(goal, dict):
        raise _err("goal: expected a table { outcome = .., part = .., below = .. }")
    unknown = set(goal) - {"outcome", "part", "below", "above"}
    if unknown:
        raise _err(f"goal.{sorted(unknown)[0]}: unknown; allowed: outcome, part, below, above")
    if goal.get("outcome") not in outcomes:
        raise _err(
            f"goal.outcome: {goal.get('outcome')!r} is not among the kept outcomes; "
            f"allowed: {', '.join(outcomes)}"
        )
    if goal.get("part", "delta") not in ("run", "counterfactual", "delta"):
        raise _err(
            f"goal.part: {goal['part']!r} is not allowed; allowed: run, counterfactual, delta"
        )
    bounds = [k for k in ("below", "above") if k in goal]
    if len(bounds) != 1:
        raise _err("goal: give exactly one of below or above")
    v = goal[bounds[0]]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _err(f"goal.{bounds[0]}: {v!r} is not a number")


def _outcome_names() -> list[str]:
    return [
        "coercer_share_mining_end",
        "coercer_share_separation_end",
        "coercer_share_magnet_end",
        "coercer_revenue_discounted_usd",
        "target_dependence_end",
        "target_dependence_mean",
        "target_months_to_below_50pct",
        "ex_coercer_capacity_t_per_year",
        "ex_coercer_mining_capacity_t_per_year",
        "ex_coercer_separation_capacity_t_per_year",
        "target_stockpile_t_end",
        "world_recycled_t_per_year_end",
        "target_intensity_ndpr_end",
        "target_lost_output_usd",
        "world_lost_output_usd",
        "peak_price_multiple",
        "months_to_peak",
        "months_to_fall_back",
        "peak_price_multiple_light",
        "peak_price_multiple_ndpr",
        "peak_price_multiple_heavy",
        "concession",
    ]


def _factor(key: str, role: str, spec) -> Factor:
    where = f"{role}s.{key}"
    if not isinstance(spec, dict):
        raise _err(f"{where}: expected {{ min = .., max = .. }} or {{ values = [..] }}")
    unknown = set(spec) - {"min", "max", "values", "integer"}
    if unknown:
        raise _err(f"{where}.{sorted(unknown)[0]}: unknown; allowed: min, max, values, integer")
    if "values" in spec:
        vals = spec["values"]
        if not isinstance(vals, list) or not vals:
            raise _err(f"{where}.values: expected a non-empty list")
        return Factor(key, role, values=tuple(vals))
    lo, hi = spec.get("min"), spec.get("max")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (lo, hi)):
        raise _err(f"{where}: min and max must be numbers")
    if not lo < hi:
        raise _err(f"{where}: min ({lo}) must be below max ({hi})")
    integer = bool(spec.get("integer", isinstance(lo, int) and isinstance(hi, int)))
    return Factor(key, role, lo=float(lo), hi=float(hi), integer=integer)


def _toml(v) -> str:
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v)


# ----------------------------------------------------------------------------- designs


def unit_design(sw: Sweep) -> np.ndarray | None:
    """The sampled design in the unit cube (one row per point), or None for full factorial.

    Latin hypercube samples come from ``scipy.stats.qmc``; Sobol (Saltelli's scheme, first and
    total order) and Morris trajectories (4 levels) from SALib; all seeded by ``master_seed``.
    """
    d = len(sw.factors)
    if sw.design == "full_factorial":
        return None
    if sw.design == "latin_hypercube":
        from scipy.stats import qmc

        unit = qmc.LatinHypercube(d=d, seed=sw.master_seed).random(sw.samples)
    else:
        keys = [f.key for f in sw.factors]
        problem = {"num_vars": d, "names": keys, "bounds": [[0.0, 1.0]] * d}
        if sw.design == "sobol":
            from SALib.sample import sobol

            unit = sobol.sample(problem, sw.samples, calc_second_order=False, seed=sw.master_seed)
        else:
            from SALib.sample import morris

            unit = morris.sample(problem, sw.samples, num_levels=4, seed=sw.master_seed)
    return np.clip(unit, 0.0, 1.0 - 1e-12)


def design_points(sw: Sweep) -> pd.DataFrame:
    """The design: one row per point, one column per factor key (scenario values)."""
    keys = [f.key for f in sw.factors]
    unit = unit_design(sw)
    if unit is None:
        rows = list(itertools.product(*(f.grid(sw.steps) for f in sw.factors)))
        return pd.DataFrame(rows, columns=keys)
    rows = [[f.from_unit(u) for f, u in zip(sw.factors, row, strict=True)] for row in unit]
    return pd.DataFrame(rows, columns=keys)


@dataclass(frozen=True)
class Task:
    """One run: a design point with a replicate seed."""

    run_id: str
    point: int
    replicate: int
    seed: int
    values: tuple  # factor values, in factor order
    base_raw: dict = field(repr=False, compare=False)
    keys: tuple = ()
    months: int = 120
    firms: int | None = None
    outcomes: tuple = ()
    timeseries: tuple = ()


def tasks_for(sw: Sweep) -> list[Task]:
    """Every (point, replicate) task, in a fixed order, with its deterministic run id.

    A point whose values repeat an earlier point (Saltelli's and Morris's designs can repeat
    a point once an integer factor is rounded) is the same run and is run only once; analysis
    maps results back to design points by their factor values.
    """
    base = resolve_raw(sw.base)
    base_text = json.dumps(base, sort_keys=True, default=str)
    points = design_points(sw)
    keys = tuple(points.columns)
    out: list[Task] = []
    seen: set[str] = set()
    for p, row in enumerate(points.itertuples(index=False)):
        values = tuple(v.item() if hasattr(v, "item") else v for v in row)
        for r, seed in enumerate(sw.seeds):
            ident = json.dumps([base_text, keys, values, seed, sw.months, sw.firms], default=str)
            run_id = hashlib.sha256(ident.encode()).hexdigest()[:16]
            if run_id in seen:  # a design point repeated (a rounded integer factor): run once
                continue
            seen.add(run_id)
            out.append(
                Task(
                    run_id,
                    p,
                    r,
                    seed,
                    values,
                    base,
                    keys,
                    sw.months,
                    sw.firms,
                    sw.outcomes,
                    sw.timeseries,
                )
            )
    return out


def shard(tasks: list[Task], i: int, n: int) -> list[Task]:
    """The i-th of n deterministic slices (1-based), for batch arrays."""
    return [t for k, t in enumerate(tasks) if k % n == i - 1]


# ----------------------------------------------------------------------------- running


def run_task(task: Task) -> dict:
    """Run one task (scenario and counterfactual); never raises: failures come back recorded."""
    from experiments.runner import run_scenario

    row = {
        "run_id": task.run_id,
        "point": task.point,
        "replicate": task.replicate,
        "seed": task.seed,
    }
    for k, v in zip(task.keys, task.values, strict=True):
        row[k] = v
    t0 = time.perf_counter()
    try:
        raw = apply_overrides(
            task.base_raw, [f"{k}={_toml(v)}" for k, v in zip(task.keys, task.values, strict=True)]
        )
        raw["months"] = task.months
        raw["seed"] = task.seed
        if task.firms:
            raw["firms"] = task.firms
        res = run_scenario(build_scenario(raw), workers=1)  # a sweep spreads runs, not pairs
        s = res.summary
        row.update(
            status="ok",
            error="",
            verdict=s["verdict"],
            concession=bool(s["concession"]["obtained"]),
        )
        for o in task.outcomes:
            for part in ("run", "counterfactual", "delta"):
                v = s["outcomes"][o][part]
                row[f"{o}.{part}"] = np.nan if v is None else float(v)
        ts = None
        if task.timeseries:
            df = res.timeseries
            ts = df[df["variable"].isin(list(task.timeseries))].copy()
            ts.insert(0, "run_id", task.run_id)
    except Exception as exc:  # a failed run is recorded and the sweep goes on
        row.update(
            status="failed",
            error=f"{type(exc).__name__}: {exc}"[:2000],
            verdict=None,
            concession=None,
        )
        row["traceback"] = traceback.format_exc(limit=3)[-2000:]
        ts = None
    row["wall_seconds"] = time.perf_counter() - t0
    return {"row": row, "timeseries": ts}


class PartWriter:
    """Streams rows to Parquet part files, each written to a temporary name and renamed."""

    def __init__(self, out: Path, tag: str, batch: int = 25, seconds: float = 20.0):
        self.dir = out / "results"
        self.ts_dir = out / "timeseries"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tag = tag
        self.batch, self.seconds = batch, seconds
        self.rows: list[dict] = []
        self.ts: list[pd.DataFrame] = []
        self.last = time.monotonic()
        self.count = 0

    def add(self, result: dict) -> None:
        """Queue one run's row (and time series); flush when the batch is full or old."""
        self.rows.append(result["row"])
        if result["timeseries"] is not None:
            self.ts.append(result["timeseries"])
        if len(self.rows) >= self.batch or time.monotonic() - self.last > self.seconds:
            self.flush()

    def flush(self) -> None:
        """Write queued rows as one part (atomically)."""
        if not self.rows:
            return
        name = f"part-{self.tag}-{os.getpid()}-{time.time_ns()}-{self.count:05d}.parquet"
        _write_atomic(pd.DataFrame(self.rows), self.dir / name)
        if self.ts:
            self.ts_dir.mkdir(parents=True, exist_ok=True)
            _write_atomic(pd.concat(self.ts, ignore_index=True), self.ts_dir / name)
        self.rows, self.ts = [], []
        self.count += 1
        self.last = time.monotonic()


def _write_atomic(df: pd.DataFrame, path: Path) -> None:
    """Write a table to a temporary name and rename it into place.

    A factor whose values mix types (say a number and a word) is written as text.
    """
    df = df.copy()
    for col in df.columns:
        if df[col].dtype == object:
            kinds = {type(v) for v in df[col] if v is not None}
            if len(kinds) > 1:
                df[col] = df[col].map(lambda v: None if v is None else str(v))
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def recorded_ids(out: Path) -> set[str]:
    """Run ids already recorded in the result parts under ``out`` (any shard)."""
    ids: set[str] = set()
    for part in sorted(out.glob("**/results/part-*.parquet")):
        ids.update(pd.read_parquet(part, columns=["run_id"])["run_id"])
    return ids


class Progress:
    """A one-line progress report on stderr: done, failed, rate and time left.

    On a terminal the line is redrawn at most twice a second; in a log file (a batch job) a
    line is written at every tenth of the sweep and at least every minute.
    """

    def __init__(self, total: int, already: int = 0, stream=None):
        self.total, self.done, self.failed = total, already, 0
        self.start = time.monotonic()
        self.new = 0
        self.last = 0.0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.step = max(total // 10, 1)
        self.next_mark = (already // self.step + 1) * self.step

    def line(self) -> str:
        """The current report."""
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = self.new / elapsed
        left = (self.total - self.done) / rate if rate > 0 else math.inf
        left_text = "?" if math.isinf(left) else f"{left:.0f} s"
        return (
            f"[sweep] {self.done}/{self.total} runs done, {self.failed} failed, "
            f"{rate:.2f} runs/s, about {left_text} left"
        )

    def update(self, ok: bool) -> None:
        """Count one finished run and redraw when due."""
        self.done += 1
        self.new += 1
        self.failed += 0 if ok else 1
        now = time.monotonic()
        if self.tty:
            if now - self.last > 0.5 or self.done == self.total:
                self.last = now
                print("\r" + self.line(), end="", file=self.stream, flush=True)
        elif self.done >= self.next_mark or self.done == self.total or now - self.last > 60:
            self.last = now
            self.next_mark = (self.done // self.step + 1) * self.step
            print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        """End the progress line."""
        if self.tty:
            print(file=self.stream)


def run_batch(tasks: list[Task]) -> list[dict]:
    """Run several tasks in one go (one message each way per batch, not per run)."""
    return [run_task(t) for t in tasks]


def batches(tasks: list[Task], slots: int, most: int = 4) -> list[list[Task]]:
    """Cut ``tasks`` into batches: at least about 4 per slot (for balance), at most ``most``."""
    size = max(1, min(most, len(tasks) // max(4 * slots, 1)))
    return [tasks[k : k + size] for k in range(0, len(tasks), size)]


def _pool_context():
    """Processes for local workers: forked from a server that has imported the model once.

    ``import mesa`` makes ``spawn`` the default start method (each worker would start a fresh
    interpreter and import everything again, about a second each); ``forkserver`` with the
    model preloaded starts workers in milliseconds and is safe with threads in the parent.
    """
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["experiments.sweep", "experiments.runner"])
    return ctx


BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def _one_blas_thread():
    """Workers started meanwhile use one BLAS thread each (as Dask's workers do).

    With several worker processes on as many cores, each process's own BLAS thread pool only
    oversubscribes the cores; the model's matrix products are small. Variables the user has
    set are left alone; the parent's environment is restored afterwards.
    """
    saved = {k: os.environ.get(k) for k in BLAS_THREAD_VARS}
    for k in BLAS_THREAD_VARS:
        os.environ.setdefault(k, "1")
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _local(tasks: list[Task], workers: int) -> Iterator[dict]:
    """Run on local processes, at most two batches per worker in flight (memory stays flat).

    One worker runs in this process, unless ``LANTHANIDE_SWEEP_POOL=1`` asks for a pool of one
    (to compare the pool with itself at 1 and N workers).
    """
    if workers <= 1 and os.environ.get("LANTHANIDE_SWEEP_POOL", "") != "1":
        for t in tasks:
            yield run_task(t)
        return
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    todo = iter(batches(tasks, workers))
    with _one_blas_thread(), ProcessPoolExecutor(workers, mp_context=_pool_context()) as pool:
        running = set()
        for b in itertools.islice(todo, 2 * workers):
            running.add(pool.submit(run_batch, b))
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                nxt = next(todo, None)
                if nxt is not None:
                    running.add(pool.submit(run_batch, nxt))
                yield from fut.result()


DASK_CONFIG_DIR = SWEEPS_DIR / "cluster" / "dask-config"
"""Dask settings for sweeps (less frequent housekeeping); point ``DASK_CONFIG`` here."""


def _connect(address: str):
    """A Dask client on an existing scheduler, or a one-line error."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - dask[distributed] is a dependency
        raise SweepError("--scheduler: dask.distributed is not installed") from None
    try:
        return Client(address, timeout="20s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise SweepError(
            f"--scheduler: cannot reach a Dask scheduler at {address} ({exc})"
        ) from None


def _dask(tasks: list[Task], client, wait_seconds: float = 600.0) -> Iterator[dict]:
    """Run on a Dask cluster: batches submitted a window at a time, results as they finish.

    The window is three batches per worker thread, counted again as workers join or leave (a
    dask-jobqueue cluster grows while its jobs start); at most ``wait_seconds`` are spent
    waiting for the first worker.
    """
    from distributed import as_completed

    def threads() -> int:
        return max(sum(client.nthreads().values()), 1)

    try:
        if tasks:
            try:
                client.wait_for_workers(1, timeout=wait_seconds)
            except TimeoutError:
                raise SweepError(
                    f"--scheduler: no Dask worker joined within {wait_seconds:.0f} s"
                ) from None
        todo = iter(batches(tasks, threads()))
        queue = as_completed()
        in_flight = 0
        checked = time.monotonic()
        slots = threads()

        def top_up() -> None:
            nonlocal in_flight
            while in_flight < 3 * slots:
                nxt = next(todo, None)
                if nxt is None:
                    return
                queue.add(client.submit(run_batch, nxt, pure=False))
                in_flight += 1

        top_up()
        for fut in queue:
            in_flight -= 1
            results = fut.result()
            fut.release()
            if time.monotonic() - checked > 5.0:
                slots, checked = threads(), time.monotonic()
            top_up()
            yield from results
    finally:
        client.close()


def run_sweep(
    sw: Sweep,
    out: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    shard_of: tuple[int, int] | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict:
    """Run a sweep into ``out``; returns counts. Results are identical whatever the back end.

    Args:
        sw: the validated sweep.
        out: the output folder (created; it must not hold results unless ``resume``).
        workers: local processes (default: all cores); ignored with ``scheduler``.
        scheduler: address of a running Dask scheduler, ``tcp://HOST:PORT``.
        shard_of: ``(i, n)``: run only the i-th of n deterministic slices.
        resume: skip runs already recorded under ``out``.
        progress: draw the progress line on stderr.

    Returns:
        ``tasks`` (in this slice), ``ran``, ``skipped`` and ``failed`` counts.
    """
    out = Path(out)
    if not resume and any(out.glob("**/results/part-*.parquet")):
        raise SweepError(f"--out: {out} already holds results; use --resume to continue it")
    tasks = tasks_for(sw)
    if shard_of:
        tasks = shard(tasks, *shard_of)
    tag = f"s{shard_of[0]}of{shard_of[1]}" if shard_of else "all"
    done = recorded_ids(out) if resume else set()
    todo = [t for t in tasks if t.run_id not in done]
    client = _connect(scheduler) if scheduler else None
    out.mkdir(parents=True, exist_ok=True)
    _write_manifest(sw, out, len(tasks))
    writer = PartWriter(out, tag, batch=int(os.environ.get("LANTHANIDE_SWEEP_BATCH", "25")))
    bar = Progress(len(tasks), already=len(tasks) - len(todo)) if progress else None
    source = _dask(todo, client) if client else _local(todo, workers or os.cpu_count() or 1)
    failed = 0
    try:
        for result in source:
            ok = result["row"]["status"] == "ok"
            failed += 0 if ok else 1
            writer.add(result)
            if bar:
                bar.update(ok)
    finally:
        writer.flush()
        if bar:
            bar.close()
    return {
        "tasks": len(tasks),
        "ran": len(todo),
        "skipped": len(tasks) - len(todo),
        "failed": failed,
    }


def _write_manifest(sw: Sweep, out: Path, n: int) -> None:
    doc = {
        "name": sw.name,
        "base": sw.base,
        "design": sw.design,
        "samples": sw.samples,
        "replicates": sw.replicates,
        "master_seed": sw.master_seed,
        "seeds": sw.seeds,
        "months": sw.months,
        "firms": sw.firms,
        "tasks": n,
        "factors": [
            {"key": f.key, "role": f.role, "values": f.values, "min": f.lo, "max": f.hi}
            for f in sw.factors
        ],
        "outcomes": list(sw.outcomes),
        "sweep": sw.raw,
    }
    path = out / "sweep.json"
    tmp = out / ".sweep.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    design = design_points(sw)
    design.insert(0, "point", range(len(design)))
    unit = unit_design(sw)
    if unit is not None:  # the unit-cube sample, for SALib's analysers
        for k, f in enumerate(sw.factors):
            design[f"u:{f.key}"] = unit[:, k]
    _write_atomic(design, out / "design.parquet")


def collect(out: str | Path) -> pd.DataFrame:
    """Merge every result part under ``out`` (all shards) into ``out/results.parquet``.

    A run recorded more than once (a shard rerun by hand) keeps one row, an ``ok`` row before a
    failed one.
    """
    out = Path(out)
    parts = sorted(out.glob("**/results/part-*.parquet"))
    if not parts:
        raise SweepError(f"collect: no result parts under {out}")
    df = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    df["_ok"] = df["status"] == "ok"
    df = (
        df.sort_values(["run_id", "_ok"], ascending=[True, False])
        .drop_duplicates("run_id")
        .drop(columns="_ok")
        .sort_values(["point", "replicate"])
        .reset_index(drop=True)
    )
    _write_atomic(df, out / "results.parquet")
    ts_parts = sorted(out.glob("**/timeseries/part-*.parquet"))
    if ts_parts:
        ts = pd.concat([pd.read_parquet(p) for p in ts_parts], ignore_index=True)
        ts = ts[ts["run_id"].isin(set(df["run_id"]))]
        _write_atomic(ts, out / "timeseries.parquet")
    return df


def iter_results(out: str | Path) -> Iterable[pd.DataFrame]:
    """Result parts one at a time (for analysis of sweeps too large for memory)."""
    for p in sorted(Path(out).glob("**/results/part-*.parquet")):
        yield pd.read_parquet(p)


__all__ = [
    "Sweep",
    "SweepError",
    "collect",
    "design_points",
    "load_sweep",
    "run_sweep",
    "shard",
    "tasks_for",
]
