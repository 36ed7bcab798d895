"""The measurements: each returns a plain dict of figures (seconds, rates, MiB).

Timings are wall-clock (``time.perf_counter``) and untraced, with the CPU time of each repeat
(``time.process_time``) beside them for the model, Boltzmann and the floor: on a shared machine
the fastest repeat's CPU time is the steadier figure, and ratios of CPU rates are reported too.
Peak memory comes from a separate, traced run of the same work (``tracemalloc`` slows Python
code, so it never overlaps a timing). The peak is the largest amount of memory allocated during
that run and still held at one moment, numpy buffers included; memory held before the run
started is not counted.
"""

from __future__ import annotations

import gc
import json
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import mesa

from abm.model import RareEarthModel, one_blas_thread
from abm.scenario import load_scenario
from benchmarks.boltzmann import BoltzmannNoSpace
from benchmarks.numpy_bound import make_firms, numpy_month

MIB = 2**20


def peak_traced_mib(fn) -> float:
    """Peak memory allocated while ``fn()`` runs, in MiB (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / MIB


def max_rss_mib() -> float:
    """The process's resident-set high-water mark so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _release(model: mesa.Model) -> None:
    """Drop Mesa 3.3's class-level reference to a finished model (``Agent._ids``)."""
    mesa.Agent._ids.pop(model, None)


# ----------------------------------------------------------------------------- our model


def _build(n: int, months: int, engine: str | None = None) -> RareEarthModel:
    return RareEarthModel(load_scenario("default", firms=n, months=months), engine=engine)


class _OurRepeats:
    """Repeats of our model's timing at ``n`` firms, run one at a time (see :func:`lanthanide`)."""

    def __init__(self, n: int, months: int, engine: str | None = None):
        self.n, self.months, self.engine = n, months, engine
        self.step_seconds: list[float] = []  # every month of every repeat
        self.run_seconds: list[float] = []
        self.build_seconds: list[float] = []
        self.cpu_seconds: list[float] = []
        warm = _build(n, 2, engine)
        self.used = warm.engine
        if self.used == "numba":
            warm.step()
        _release(warm)
        del warm

    def repeat(self) -> None:
        """Build a fresh model (timed apart) and step it ``months`` times."""
        gc.collect()
        t0 = time.perf_counter()
        model = _build(self.n, self.months, self.engine)
        self.build_seconds.append(time.perf_counter() - t0)
        this_run = []
        c0 = time.process_time()
        for _ in range(self.months):
            t = time.perf_counter()
            model.step()
            this_run.append(time.perf_counter() - t)
        self.cpu_seconds.append(time.process_time() - c0)
        _release(model)
        del model
        self.step_seconds.extend(this_run)
        self.run_seconds.append(sum(this_run))

    def result(self) -> dict:
        """The figures of the repeats so far, and the peak memory of one traced run."""
        n, months, engine = self.n, self.months, self.engine

        def traced() -> None:
            model = _build(n, months, engine)
            for _ in range(months):
                model.step()
            _release(model)

        seconds = statistics.median(self.run_seconds)
        return {
            "firms": n,
            "engine": self.used,
            "months": months,
            "repeats": len(self.run_seconds),
            "seconds": seconds,
            "seconds_all_repeats": self.run_seconds,
            "firm_months_per_second": n * months / seconds,
            "cpu_seconds_all_repeats": self.cpu_seconds,
            "firm_months_per_cpu_second": n * months / min(self.cpu_seconds),
            "month_ms_median": 1000 * statistics.median(self.step_seconds),
            "month_ms_max": 1000 * max(self.step_seconds),
            "startup_seconds": statistics.median(self.build_seconds),
            "peak_mib": peak_traced_mib(traced),
            "max_rss_mib_after": max_rss_mib(),
        }


def lanthanide(n: int, months: int, repeats: int = 3, engine: str | None = None) -> dict:
    """Firm-months per second of ``RareEarthModel.step`` at ``n`` firms (start-up excluded).

    Each repeat builds a fresh model from the default scenario and steps it ``months`` times
    from its start; the rate uses the median repeat. Start-up (scenario load and population
    build) is timed separately. ``engine`` as :mod:`abm.engine` (None: ``auto``); on the numba
    engine one month of an untimed model is run first, so the once-per-process cost of loading
    the kernels (measured by :func:`engine_startup`) is not in the rate.
    """
    runs = _OurRepeats(n, months, engine)
    for _ in range(repeats):
        runs.repeat()
    return runs.result()


# ----------------------------------------------------------------------------- Mesa reference


class _BoltzmannRepeats:
    """Repeats of the Boltzmann timing on one model, run one at a time (see :func:`boltzmann`)."""

    def __init__(self, n: int, steps: int):
        self.n, self.steps = n, steps
        gc.collect()
        t0 = time.perf_counter()
        self.model = BoltzmannNoSpace(n, seed=0)
        self.build = time.perf_counter() - t0
        self.run_seconds: list[float] = []
        self.cpu_seconds: list[float] = []

    def repeat(self) -> None:
        """Step the model ``steps`` more times."""
        model = self.model
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(self.steps):
            model.step()
        self.run_seconds.append(time.perf_counter() - t0)
        self.cpu_seconds.append(time.process_time() - c0)

    def result(self) -> dict:
        """The figures of the repeats so far (the model is released), and a traced run's peak."""
        n, steps = self.n, self.steps
        conserved = self.model.total_wealth() == n
        _release(self.model)
        self.model = None

        def traced() -> None:
            m = BoltzmannNoSpace(n, seed=0)
            for _ in range(min(steps, 5)):
                m.step()
            _release(m)

        seconds = statistics.median(self.run_seconds)
        return {
            "agents": n,
            "steps": steps,
            "repeats": len(self.run_seconds),
            "seconds": seconds,
            "seconds_all_repeats": self.run_seconds,
            "agent_steps_per_second": n * steps / seconds,
            "cpu_seconds_all_repeats": self.cpu_seconds,
            "agent_steps_per_cpu_second": n * steps / min(self.cpu_seconds),
            "startup_seconds": self.build,
            "wealth_conserved": conserved,
            "peak_mib": peak_traced_mib(traced),
            "max_rss_mib_after": max_rss_mib(),
        }


def boltzmann(n: int, steps: int, repeats: int = 3) -> dict:
    """Agent-steps per second of Mesa's Boltzmann wealth model without a space.

    One model is built (not timed) and stepped ``steps`` times per repeat; the rate uses the
    median repeat.
    """
    runs = _BoltzmannRepeats(n, steps)
    for _ in range(repeats):
        runs.repeat()
    return runs.result()


def ours_and_boltzmann(n: int, months: int, steps: int, repeats: int = 5) -> dict:
    """Our model and Mesa's Boltzmann at ``n`` agents, their repeats taken in turn.

    Repeat k of our model (:func:`lanthanide`'s) is followed at once by repeat k of Boltzmann
    (:func:`boltzmann`'s), so that each pair ran under the same conditions on a machine whose
    speed drifts (another process starting, the CPU's clock, a neighbour on a shared host). The
    ratio of the pair's rates is taken for each pair, from wall time and from CPU time; the
    reported ratio is the median pair's. The ratio of the two median rates is kept beside it.

    Returns:
        ``{"lanthanide": ..., "boltzmann": ..., "pair_ratios": [...], "pair_ratios_cpu":
        [...], "ours_over_boltzmann": median pair ratio, "ours_over_boltzmann_cpu": ...,
        "ratio_of_medians": ...}``.
    """
    ours = _OurRepeats(n, months)
    boltz = _BoltzmannRepeats(n, steps)
    for _ in range(repeats):
        ours.repeat()
        boltz.repeat()

    def ratios(ours_seconds: list[float], boltz_seconds: list[float]) -> list[float]:
        # each pair's firm-months per second over its agent-steps per second
        return [
            (n * months / o) / (n * steps / b)
            for o, b in zip(ours_seconds, boltz_seconds, strict=True)
        ]

    per_wall = ratios(ours.run_seconds, boltz.run_seconds)
    per_cpu = ratios(ours.cpu_seconds, boltz.cpu_seconds)
    o_res, b_res = ours.result(), boltz.result()
    return {
        "lanthanide": o_res,
        "boltzmann": b_res,
        "pair_ratios": per_wall,
        "pair_ratios_cpu": per_cpu,
        "ours_over_boltzmann": statistics.median(per_wall),
        "ours_over_boltzmann_cpu": statistics.median(per_cpu),
        "ratio_of_medians": o_res["firm_months_per_second"] / b_res["agent_steps_per_second"],
    }


# ----------------------------------------------------------------------------- numpy bound


def numpy_lower_bound(n: int, months: int, repeats: int = 3) -> dict:
    """Firm-months per second of :func:`benchmarks.numpy_bound.numpy_month` (arrays built first).

    BLAS runs on one thread, as in the model's step.
    """
    run_seconds, cpu_seconds = [], []
    for _ in range(repeats):
        firms, world = make_firms(n)
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        with one_blas_thread():  # as the model runs (see abm.model.one_blas_thread)
            for _ in range(months):
                numpy_month(firms, world)
        run_seconds.append(time.perf_counter() - t0)
        cpu_seconds.append(time.process_time() - c0)

    def traced() -> None:
        f, w = make_firms(n)
        for _ in range(months):
            numpy_month(f, w)

    seconds = statistics.median(run_seconds)
    return {
        "firms": n,
        "months": months,
        "repeats": repeats,
        "seconds": seconds,
        "seconds_all_repeats": run_seconds,
        "firm_months_per_second": n * months / seconds,
        "cpu_seconds_all_repeats": cpu_seconds,
        "firm_months_per_cpu_second": n * months / min(cpu_seconds),
        "peak_mib": peak_traced_mib(traced),
    }


# ----------------------------------------------------------------------------- default run


def default_scenario(trace_memory: bool = True) -> dict:
    """The default scenario with its counterfactual via ``experiments.runner.run_scenario``.

    First in one process (``workers=1``: the two runs one after the other), then as
    ``lanthanide run`` does by default (``workers=None``: the counterfactual in a second
    process where that is safe, see ``experiments.runner.pair_workers``), under ``"paired"``.
    ``wall_seconds`` in the manifest times ``model.run()`` of each run; the whole call adds
    building both models, assembling the tables and the summary. Peak memory is traced in
    the one-process call (a child's allocations are not seen by tracemalloc).
    """
    from experiments.runner import run_scenario

    gc.collect()
    t0 = time.perf_counter()
    result = run_scenario("default", workers=1)
    total = time.perf_counter() - t0
    sims = dict(result.manifest["wall_seconds"])
    months = int(result.manifest["months"])
    out = {
        "months": months,
        "firm_agents": int(result.manifest["firm_agents"]),
        "manifest_wall_seconds": sims,
        "simulation_seconds": sum(sims.values()),
        "total_seconds": total,
        "month_ms": 1000 * sum(sims.values()) / (months * len(sims)),
        "timeseries_rows": len(result.timeseries),
        "verdict": result.summary.get("verdict"),
    }
    del result
    gc.collect()
    t0 = time.perf_counter()
    paired = run_scenario("default")
    out["paired"] = {
        "processes": int(paired.manifest["processes"]),
        "manifest_wall_seconds": dict(paired.manifest["wall_seconds"]),
        "total_seconds": time.perf_counter() - t0,
    }
    del paired
    out["peak_mib"] = (
        peak_traced_mib(lambda: run_scenario("default", workers=1)) if trace_memory else None
    )
    out["max_rss_mib_after"] = max_rss_mib()
    return out


# ----------------------------------------------------------------------------- long run at scale


def long_run(firms: int = 100_000, months: int = 192, timeout: float = 600.0) -> dict:
    """One run of ``firms`` firms for ``months`` months in a fresh process (its own peak RSS).

    The child (``python -m benchmarks.scale``) builds the default scenario at that size, steps it
    to the horizon with data collection, builds the long table, and reports its timings and its
    resident-set high-water mark; the counterfactual is not run.
    """
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.scale",
        "--firms",
        str(firms),
        "--months",
        str(months),
    ]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if res.returncode != 0:
        tail = res.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"firms": firms, "months": months, "error": tail[0]}
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["process_seconds"] = time.perf_counter() - t0
    return out


# ----------------------------------------------------------------------------- engine start-up

_STARTUP_CHILD = """
import json, time
t0 = time.perf_counter()
from abm.model import RareEarthModel
from abm.scenario import load_scenario
t1 = time.perf_counter()
model = RareEarthModel(load_scenario("default", firms={firms}, months=3), engine="{engine}")
t2 = time.perf_counter()
model.step()
t3 = time.perf_counter()
model.step()
t4 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "build": t2 - t1, "first_month": t3 - t2,
                   "second_month": t4 - t3}}))
"""


def engine_startup(firms: int = 2_000, first_ever: bool = False) -> dict:
    """What the numba engine costs once per process, in fresh processes (seconds).

    Three children each build a ``firms``-firm model and step it twice: on the numpy engine; on
    the numba engine with numba's cache in place (what every run after the first on a machine
    pays: importing numba and loading the compiled kernels); and, with ``first_ever``, on the
    numba engine with an empty cache directory (``NUMBA_CACHE_DIR``: what the very first run on
    a machine pays, the compilation; 20-45 s, so not in the default benchmark). The cost is the
    first month less the second, plus the build's difference.
    """
    import os
    import tempfile

    def child(engine: str, env: dict | None = None) -> dict:
        code = _STARTUP_CHILD.format(firms=firms, engine=engine)
        res = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env=env,
        )
        if res.returncode != 0:
            tail = res.stderr.strip().splitlines()[-1:] or ["no output"]
            return {"error": tail[0]}
        return json.loads(res.stdout.strip().splitlines()[-1])

    from abm.engine import numba_available

    out: dict = {"firms": firms, "numpy": child("numpy")}
    if not numba_available():
        out["numba"] = None
        return out
    child("numba")  # make sure the cache holds the kernels
    out["numba_cached"] = child("numba")
    out["numba_first_ever"] = None
    if first_ever:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "NUMBA_CACHE_DIR": tmp}
            out["numba_first_ever"] = child("numba", env=env)
    for key in ("numba_cached", "numba_first_ever"):
        r = out[key]
        if r is None:
            continue
        if "error" not in r and "error" not in out["numpy"]:
            r["once_per_process_seconds"] = (
                r["first_month"] - r["second_month"] + r["build"] - out["numpy"]["build"]
            )
    return out


# ----------------------------------------------------------------------------- sweeps

SWEEP_TOML = """
name = "bench-sweep"
base = "default"
months = {months}
replicates = {replicates}
master_seed = 8
design = "latin_hypercube"
samples = {samples}
outcomes = ["target_lost_output_usd", "coercer_share_mining_end"]

[levers]
"countries.Japan.stockpile_target_days" = {{ min = 0, max = 365 }}

[uncertainties]
"market.leakage_share" = {{ min = 0.0, max = 0.4 }}
"""


class _RssSampler:
    """Samples the RSS of this process and all its children every ``every`` seconds."""

    def __init__(self, every: float = 0.2):
        import threading

        self.every = every
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            try:
                total += me.memory_info().rss
                for kid in me.children(recursive=True):
                    try:
                        total += kid.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            self.peak_mib = max(self.peak_mib, total / MIB)
            self._stop.wait(self.every)

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def sweep(runs: int = 200, workers: int = 1, months: int = 12) -> dict:
    """Runs per second of a ``runs``-run sweep (default scenario, each run with counterfactual).

    Uses the public sweep API through ``benchmarks.sweeps`` (``_load``, ``_timed``): a Latin
    hypercube over Japan's stockpile target and the leakage share, 2 replicate seeds per
    point, results written as Parquet parts into a temporary folder. The wall time runs from
    the call to its return (worker start-up included). Peak memory is the largest sum of the
    RSS of this process and its worker processes, sampled every 0.2 s.
    """
    import tempfile

    from benchmarks.sweeps import _load, _timed
    from experiments.sweep import tasks_for

    replicates = 2
    samples = max(runs // replicates, 1)
    with tempfile.TemporaryDirectory() as tmp:
        text = SWEEP_TOML.format(months=months, replicates=replicates, samples=samples)
        sw, _ = _load(text, Path(tmp))
        gc.collect()
        base_rss = _rss_now_mib()
        with _RssSampler() as rss:
            wall, _cpu = _timed(sw, Path(tmp) / "out", workers=workers)
    n = len(tasks_for(sw))
    return {
        "runs": n,
        "failed": 0,  # _timed raises if any run failed
        "workers": workers,
        "months": months,
        "scenario": "default",
        "seconds": wall,
        "runs_per_second": n / wall,
        "runs_per_hour": 3600 * n / wall,
        "peak_rss_mib": rss.peak_mib,
        "rss_before_mib": base_rss,
    }


def _rss_now_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / MIB
