"""Sweep throughput and memory: local workers, a Dask cluster on the same cores, a long sweep.

``python -m benchmarks.sweeps`` (a few minutes on 2 cores; ``--quick`` for a fast look,
``--memory-runs N`` for the length of the memory sweep, ``--json PATH`` to save) measures:

- runs per second of one sweep on 1 and on 2 local worker processes, and the parallel
  efficiency (speed-up over 1 worker, divided by the workers);
- the same sweep on a Dask cluster started here as separate ``dask scheduler`` and
  ``dask worker --nworkers 2`` processes on 127.0.0.1 (the same cores), against 2 local
  workers; cluster start-up is timed apart;
- resident memory over a long sweep of short runs (``lanthanide sweep`` in a subprocess): the
  parent's and the workers' RSS sampled every half second with the runs recorded so far, so
  one can see whether memory grows with the number of runs.

Timings are wall-clock of ``run_sweep`` (tasks, pool or client, runs, Parquet parts), from call
to return. Nothing here is a test: nothing fails on speed. :func:`run` returns the figures and
:func:`report` formats them, for ``python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

THROUGHPUT_SWEEP = """
name = "bench-throughput"
base = "taiwan-crisis"
months = {months}
replicates = {replicates}
master_seed = 11
design = "latin_hypercube"
samples = {samples}
outcomes = ["target_lost_output_usd", "coercer_share_mining_end"]
[levers]
"countries.Japan.stockpile_t.light" = {{ min = 0, max = 10000 }}
"countries.China.rule_approval_rate" = {{ min = 0.0, max = 0.8 }}
[uncertainties]
"market.leakage_share" = {{ min = 0.0, max = 0.4 }}
"""

MEMORY_SWEEP = """
name = "bench-memory"
base = "baseline-2025"
months = {months}
firms = 60
replicates = {replicates}
master_seed = 12
design = "latin_hypercube"
samples = {samples}
outcomes = ["target_lost_output_usd", "coercer_share_mining_end"]
[levers]
"countries.Japan.stockpile_t.light" = {{ min = 0, max = 10000 }}
[uncertainties]
"market.leakage_share" = {{ min = 0.0, max = 0.4 }}
"""


def _load(text: str, folder: Path):
    from experiments.sweep import load_sweep

    path = folder / "sweep.toml"
    path.write_text(text)
    return load_sweep(path), path


def _timed(sw, out: Path, *, pool: bool = False, **kw) -> tuple[float, float]:
    """Wall seconds of one ``run_sweep`` and this (parent) process's CPU seconds during it."""
    from experiments.sweep import run_sweep

    saved = os.environ.get("LANTHANIDE_SWEEP_POOL")
    if pool:
        os.environ["LANTHANIDE_SWEEP_POOL"] = "1"
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        counts = run_sweep(sw, out, progress=False, **kw)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        if saved is None:
            os.environ.pop("LANTHANIDE_SWEEP_POOL", None)
        else:
            os.environ["LANTHANIDE_SWEEP_POOL"] = saved
    if counts["failed"]:
        raise RuntimeError(f"{counts['failed']} runs failed in a benchmark sweep")
    return wall, cpu


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_cluster(workers: int, lean: bool = False) -> tuple[str, list[subprocess.Popen], float]:
    """``dask scheduler`` and ``dask worker`` as separate processes; returns when ready.

    ``lean`` starts both with the shipped sweep settings (``DASK_CONFIG`` set to
    :data:`experiments.sweep.DASK_CONFIG_DIR`), as docs/SWEEPS.md advises; otherwise with
    Dask's defaults (any ``DASK_CONFIG`` of the caller removed).
    """
    from distributed import Client

    from experiments.sweep import DASK_CONFIG_DIR

    dask = str(Path(sys.executable).parent / "dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "DASK_CONFIG"}
    if lean:
        env["DASK_CONFIG"] = str(DASK_CONFIG_DIR)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            **quiet,
        )
    ]
    procs.append(
        subprocess.Popen(
            [dask, "worker", address, "--nworkers", str(workers), "--nthreads", "1"]
            + ["--no-dashboard"],
            **quiet,
        )
    )
    with Client(address, timeout="60s") as client:
        client.wait_for_workers(workers, timeout=120)
        client.run(lambda: __import__("experiments.runner"))  # warm imports, as a pool does
    return address, procs, time.perf_counter() - t0


def _cluster_cpu(procs: list[subprocess.Popen]) -> float:
    """CPU seconds used so far by the cluster's processes and their children (nannies' workers)."""
    import psutil

    total = 0.0
    for p in procs:
        try:
            root = psutil.Process(p.pid)
            for q in [root, *root.children(recursive=True)]:
                t = q.cpu_times()
                total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in reversed(procs):
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


def throughput(runs: int = 160, months: int = 36, repeats: int = 1) -> dict:
    """Runs per second on 1 and 2 local workers and on a 2-worker Dask cluster (same sweep).

    Local figures: ``local_1`` runs in this process, ``pool_1`` on a pool of one worker process,
    ``local_2`` on a pool of two. Imports are warmed first in this process (scipy.stats, the
    model), as the Dask workers are; the pool's start (its forkserver importing the model) is
    counted, the Dask cluster's is not. The cluster is started after the local sweeps (and
    stopped before the next repeat), so its idle processes (about 8% of a core) do not run
    beside them. Repeats are interleaved; the best of each is kept.
    """
    import scipy.stats  # noqa: F401  (the design's sampler, imported by the first sweep)

    import experiments.runner  # noqa: F401

    replicates = 2
    samples = max(runs // replicates, 1)
    out: dict = {"runs": samples * replicates, "months": months, "base": "taiwan-crisis"}
    out["load_average_before"] = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sw, _ = _load(
            THROUGHPUT_SWEEP.format(months=months, replicates=replicates, samples=samples), tmp
        )
        n = out["runs"]
        names = ("local_1", "pool_1", "local_2", "dask_2", "dask_2_lean")
        walls: dict[str, list[tuple[float, float]]] = {k: [] for k in names}
        cluster_cpu: dict[str, list[tuple[float, float]]] = {"dask_2": [], "dask_2_lean": []}
        starts = []
        for k in range(repeats):  # interleaved, so that a change of load hits every back end
            walls["local_1"].append(_timed(sw, tmp / f"l1-{k}", workers=1))
            walls["pool_1"].append(_timed(sw, tmp / f"p1-{k}", workers=1, pool=True))
            walls["local_2"].append(_timed(sw, tmp / f"l2-{k}", workers=2))
            for name in ("dask_2", "dask_2_lean"):
                address, procs, start = _start_cluster(2, lean=name == "dask_2_lean")
                starts.append(start)
                try:
                    before = _cluster_cpu(procs)
                    walls[name].append(_timed(sw, tmp / f"{name}-{k}", scheduler=address))
                    cluster_cpu[name].append((walls[name][-1][0], _cluster_cpu(procs) - before))
                finally:
                    _stop(procs)
        out["dask_cluster_start_seconds"] = min(starts)
        out["all_seconds"] = {k: [round(w, 2) for w, _ in ws] for k, ws in walls.items()}
        for name, ws in walls.items():
            best, parent_cpu = min(ws)
            out[f"{name}_seconds"] = best
            out[f"{name}_runs_per_second"] = n / best
            out[f"{name}_parent_cpu_seconds"] = parent_cpu
        for name, cs in cluster_cpu.items():  # the cluster's CPU in the fastest repeat
            out[f"{name}_cluster_cpu_seconds"] = min(cs)[1]
        out["speedup_2_workers"] = out["local_1_seconds"] / out["local_2_seconds"]
        out["speedup_2_workers_vs_pool_1"] = out["pool_1_seconds"] / out["local_2_seconds"]
        out["parallel_efficiency_2_workers"] = out["speedup_2_workers"] / 2
        out["dask_overhead_vs_local_2"] = out["dask_2_seconds"] / out["local_2_seconds"] - 1
        out["dask_lean_overhead_vs_local_2"] = (
            out["dask_2_lean_seconds"] / out["local_2_seconds"] - 1
        )
        out["load_average_after"] = os.getloadavg()[0]
    return out


def _rss_tree(pid: int) -> tuple[float, float, int]:
    """RSS (MiB) of a process and, summed, of all its descendants; and their number."""
    import psutil

    try:
        parent = psutil.Process(pid)
        kids = parent.children(recursive=True)
        own = parent.memory_info().rss
    except psutil.NoSuchProcess:
        return 0.0, 0.0, 0
    total = 0
    alive = 0
    for k in kids:
        try:
            total += k.memory_info().rss
            alive += 1
        except psutil.NoSuchProcess:
            pass
    return own / 2**20, total / 2**20, alive


def _rows_so_far(out: Path, cache: dict) -> int:
    import pyarrow.parquet as pq

    for p in out.glob("results/part-*.parquet"):
        if p not in cache:
            try:
                cache[p] = pq.read_metadata(p).num_rows
            except OSError:
                continue
    return sum(cache.values())


def memory(runs: int = 5000, months: int = 2, workers: int = 2, every: float = 0.5) -> dict:
    """RSS of a ``lanthanide sweep`` (parent and workers) sampled while ``runs`` short runs go."""
    replicates = 5
    samples = max(runs // replicates, 1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _, path = _load(
            MEMORY_SWEEP.format(months=months, replicates=replicates, samples=samples), tmp
        )
        out_dir = tmp / "out"
        cmd = [sys.executable, "-m", "experiments.cli", "sweep", str(path), "--out", str(out_dir)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [*cmd, "--workers", str(workers)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        samples_out = []
        cache: dict = {}
        while proc.poll() is None:
            own, kids, alive = _rss_tree(proc.pid)
            if own:
                samples_out.append(
                    {
                        "t": time.perf_counter() - t0,
                        "runs": _rows_so_far(out_dir, cache),
                        "parent_mib": own,
                        "workers_mib": kids,
                        "processes": alive,
                    }
                )
            time.sleep(every)
        wall = time.perf_counter() - t0
        err = proc.stderr.read().decode() if proc.stderr else ""
        if proc.returncode != 0:
            raise RuntimeError(f"memory sweep failed: {err.strip().splitlines()[-1:]}")
        done = _rows_so_far(out_dir, cache)
    res = {"runs": done, "months": months, "workers": workers, "wall_seconds": wall}
    res["runs_per_second"] = done / wall
    res["samples"] = samples_out
    res["peak_parent_mib"] = max(s["parent_mib"] for s in samples_out)
    res["peak_total_mib"] = max(s["parent_mib"] + s["workers_mib"] for s in samples_out)
    for frac in (0.1, 0.5, 0.9):  # memory when this share of the runs was recorded
        hit = [s for s in samples_out if s["runs"] >= frac * done]
        if hit:
            s = hit[0]
            res[f"at_{int(frac * 100)}pct"] = {
                "runs": s["runs"],
                "parent_mib": round(s["parent_mib"], 1),
                "total_mib": round(s["parent_mib"] + s["workers_mib"], 1),
            }
    return res


def run(
    quick: bool = False,
    memory_runs: int | None = None,
    progress=print,
    runs: int | None = None,
    repeats: int = 1,
) -> dict:
    """Every sweep measurement; returns JSON-ready figures (call from ``python -m benchmarks``).

    ``memory_runs=0`` skips the memory sweep.
    """
    progress("sweeps: throughput on 1 and 2 local workers and a 2-worker Dask cluster ...")
    res = {
        "throughput": throughput(
            runs=runs or (40 if quick else 160), months=24 if quick else 36, repeats=repeats
        )
    }
    n = (500 if quick else 5000) if memory_runs is None else memory_runs
    if n:
        progress(f"sweeps: memory over a {n}-run sweep ...")
        res["memory"] = memory(runs=n)
    return res


def report(res: dict) -> str:
    """The figures as a few lines of text."""
    t, m = res["throughput"], res.get("memory")

    def rate(name: str) -> str:
        return f"{t[name + '_runs_per_second']:6.2f} runs/s ({t[name + '_seconds']:.1f} s)"

    lines = [
        f"sweep of {t['runs']} runs ({t['base']}, {t['months']} months, with counterfactuals):",
        f"  1 local worker   {rate('local_1')}  (in this process)",
        f"  pool of 1        {rate('pool_1')}",
        f"  2 local workers  {rate('local_2')}  speed-up {t['speedup_2_workers']:.2f}x, "
        f"efficiency {t['parallel_efficiency_2_workers']:.0%} "
        f"({t['speedup_2_workers_vs_pool_1']:.2f}x the pool of 1)",
        f"  Dask, 2 workers  {rate('dask_2')}  {t['dask_overhead_vs_local_2']:+.1%} time vs 2 "
        f"local workers (cluster start {t['dask_cluster_start_seconds']:.1f} s, not included; "
        f"cluster CPU {t['dask_2_cluster_cpu_seconds']:.1f} s)",
        f"  Dask, lean cfg   {rate('dask_2_lean')}  {t['dask_lean_overhead_vs_local_2']:+.1%} time "
        f"vs 2 local workers (DASK_CONFIG=experiments.sweep.DASK_CONFIG_DIR; cluster CPU "
        f"{t['dask_2_lean_cluster_cpu_seconds']:.1f} s)",
        f"  parent CPU seconds: {t['local_1_parent_cpu_seconds']:.1f} (1, in process), "
        f"{t['pool_1_parent_cpu_seconds']:.1f} (pool of 1), "
        f"{t['local_2_parent_cpu_seconds']:.1f} (2 local), {t['dask_2_parent_cpu_seconds']:.1f} "
        f"(Dask), {t['dask_2_lean_parent_cpu_seconds']:.1f} (Dask, lean)",
        f"  load average before {t['load_average_before']:.2f}, "
        f"after {t['load_average_after']:.2f}",
    ]
    if not m:
        return "\n".join(lines)
    lines.append(
        f"memory over {m['runs']} runs of {m['months']} months on {m['workers']} workers "
        f"({m['runs_per_second']:.1f} runs/s):"
    )
    for k in ("at_10pct", "at_50pct", "at_90pct"):
        if k in m:
            s = m[k]
            lines.append(
                f"  after {s['runs']:5d} runs: parent {s['parent_mib']:.0f} MiB, "
                f"parent + workers {s['total_mib']:.0f} MiB"
            )
    lines.append(
        f"  peak: parent {m['peak_parent_mib']:.0f} MiB, "
        f"parent + workers {m['peak_total_mib']:.0f} MiB"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.sweeps``."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.sweeps", description=__doc__)
    p.add_argument("--quick", action="store_true", help="a small sweep and 500-run memory")
    p.add_argument(
        "--memory-runs", type=int, default=None, help="runs in the memory sweep (0: skip it)"
    )
    p.add_argument("--runs", type=int, default=None, help="runs in the throughput sweep")
    p.add_argument("--repeats", type=int, default=1, help="repeat each timing, keep the best")
    p.add_argument("--json", default=None, help="also write the figures to this file")
    args = p.parse_args(argv)
    res = run(quick=args.quick, memory_runs=args.memory_runs, runs=args.runs, repeats=args.repeats)
    print(report(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
