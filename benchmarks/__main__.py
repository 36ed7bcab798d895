"""Speed and scale of Lanthanide next to Mesa's reference model and a numpy floor.

``python -m benchmarks`` (or ``lanthanide bench``; about 3-4 minutes on 2 cores) or
``python -m benchmarks --quick`` (under a minute) prints a table; ``--json PATH`` also writes
every figure to PATH; ``--profile`` adds the hot spots of one 10,000-firm run of 12 months
(cProfile). Not a test: nothing fails on speed; the goals of issue 8 are printed with the
measured ratio next to each.

Measured in one process, so the ratios mean something on any machine:

- our model: firm-months per second of ``RareEarthModel.step()`` on the default scenario at
  1,000, 10,000 and 100,000 firm agents (start-up is timed apart and excluded from the rate);
- Mesa's Boltzmann wealth model without a space (``benchmarks.boltzmann``), agent-steps per
  second at the same agent counts: what one Python call per agent per step costs in Mesa. Its
  repeats alternate with ours (``measure.ours_and_boltzmann``), and the ratio is the median of
  the pairs' ratios, so both sides of each ratio ran under the same machine conditions;
- at 10,000 firms also the numpy engine, when ``auto`` chose numba there (``abm.engine``);
  the numba engine's once-per-process start-up in fresh processes, with and without numba's
  cache;
- a numpy floor (``benchmarks.numpy_bound``): the same amount of per-firm array arithmetic as one
  month of our model in a few large calls, no model around it;
- the default scenario with its counterfactual through ``experiments.runner.run_scenario``;
- a month of the explorer at the default size (``benchmarks.explorer``);
- runs per second of a 200-run sweep on 1 and 2 worker processes (``benchmarks.measure.sweep``);
- 100,000 firms for 192 months in a fresh process: wall time and peak RSS
  (``benchmarks.scale``), and how time per month grows from 10,000 to 100,000 firms;
- peak memory of each (tracemalloc in a separate traced run, or RSS where processes are
  involved), and the numpy work per month of the model and the floor (``benchmarks.opcount``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import mesa
import numpy as np

from abm.model import keep_freed_memory
from benchmarks import measure
from benchmarks.opcount import count_model, count_numpy_bound

FULL_SIZES = ((1_000, 24), (10_000, 48), (100_000, 12))
QUICK_SIZES = ((1_000, 12), (10_000, 12), (100_000, 6))
REFERENCE_N = 10_000
SWEEP_RUNS, QUICK_SWEEP_RUNS = 200, 20
LONG_RUN = (100_000, 192)
QUICK_LONG_RUN = (100_000, 24)
GOALS = (
    # (key, text, how the measured value is compared with the goal)
    ("ours_over_boltzmann_at_10000", "ours / Mesa Boltzmann at 10,000 agents >= 3", ">=", 3.0),
    ("floor_over_ours_at_10000", "numpy floor / ours at 10,000 firms <= 5", "<=", 5.0),
    ("growth_10k_to_100k", "time per month 10k -> 100k, relative to linear <= 1", "<=", 1.0),
    ("long_run_seconds", "100,000 firms x 192 months < 60 s", "<", 60.0),
    ("long_run_peak_rss_gib", "100,000 firms x 192 months < 2 GiB peak RSS", "<", 2.0),
    ("default_call_seconds", "default scenario + counterfactual < 1 s (run_scenario)", "<", 1.0),
    ("default_simulation_seconds", "the same, simulation in one process < 1 s", "<", 1.0),
    ("explorer_month_ms", "a month in the explorer < 50 ms", "<", 50.0),
)


def _git_commit() -> str | None:
    try:
        res = subprocess.run(
            ["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None


def run(
    quick: bool = False, profile: bool = False, progress=print, compile_time: bool = False
) -> dict:
    """All measurements; returns the figures as one JSON-ready dict."""
    sizes = QUICK_SIZES if quick else FULL_SIZES
    repeats = 3 if quick else 5
    agent_steps = 500_000 if quick else 1_000_000  # per Boltzmann repeat
    # the model sets the allocator to keep freed memory when it is built; set it first, so that
    # Boltzmann, the numpy floor and our model all run under the same settings
    keep_freed_memory()
    t_start = time.perf_counter()
    load_before = list(os.getloadavg())
    rows = []
    for n, months in sizes:
        progress(f"  {n:,} agents: our model and Mesa Boltzmann, in turn ...")
        pair = measure.ours_and_boltzmann(n, months, max(5, agent_steps // n), repeats)
        ours, boltz = pair["lanthanide"], pair["boltzmann"]
        progress(f"  {n:,} agents: numpy floor ...")
        floor = measure.numpy_lower_bound(n, max(months, agent_steps // n), repeats)
        if n == REFERENCE_N and ours["engine"] != "numpy":
            progress(f"  {n:,} agents: our model on the numpy engine ...")
            ours_np = measure.lanthanide(n, months, repeats, engine="numpy")
        else:
            ours_np = None
        rows.append(
            {
                "agents": n,
                "lanthanide": ours,
                "lanthanide_numpy_engine": ours_np,
                "boltzmann": boltz,
                "numpy_floor": floor,
                # the median of the pairs' ratios (each pair: a repeat of ours, then one of
                # Boltzmann), from wall time and from CPU time; and the ratio of median rates
                "ours_over_boltzmann": pair["ours_over_boltzmann"],
                "ours_over_boltzmann_pairs": pair["pair_ratios"],
                "ours_over_boltzmann_ratio_of_medians": pair["ratio_of_medians"],
                "floor_over_ours": floor["firm_months_per_second"] / ours["firm_months_per_second"],
                # the same ratios from CPU time (steadier under load)
                "ours_over_boltzmann_cpu": pair["ours_over_boltzmann_cpu"],
                "ours_over_boltzmann_cpu_pairs": pair["pair_ratios_cpu"],
                "floor_over_ours_cpu": floor["firm_months_per_cpu_second"]
                / ours["firm_months_per_cpu_second"],
            }
        )
    progress("  engine start-up in fresh processes ...")
    startup = measure.engine_startup(first_ever=compile_time)
    progress("  default scenario with counterfactual ...")
    default = measure.default_scenario(trace_memory=not quick)
    progress("  explorer month at the default size ...")
    from benchmarks.explorer import explorer_month

    explorer = explorer_month(months=24 if quick else 48)
    n_runs = QUICK_SWEEP_RUNS if quick else SWEEP_RUNS
    sweeps = []
    for workers in (1, 2):
        progress(f"  sweep of {n_runs} runs on {workers} worker(s) ...")
        sweeps.append(measure.sweep(n_runs, workers))
    firms, months = QUICK_LONG_RUN if quick else LONG_RUN
    progress(f"  {firms:,} firms for {months} months in a fresh process ...")
    long_run = measure.long_run(firms, months)
    progress("  counting numpy work per month ...")
    work = {"firms": REFERENCE_N, "model": count_model(REFERENCE_N), "floor": None}
    work["floor"] = count_numpy_bound(REFERENCE_N)
    out = {
        "meta": {
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "mesa": mesa.__version__,
            "git_commit": _git_commit(),
            "quick": quick,
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "load_average_before": load_before,
        },
        "sizes": rows,
        "ours_over_boltzmann_at_10000": next(
            (r["ours_over_boltzmann"] for r in rows if r["agents"] == REFERENCE_N), None
        ),
        "engine_startup": startup,
        "default_scenario": default,
        "explorer": explorer,
        "sweeps": sweeps,
        "long_run": long_run,
        "numpy_work_per_month": work,
    }
    out["goals"] = goals(out)
    if profile:
        from benchmarks.hotspots import profile_model

        progress("  profiling 12 months at 10,000 firms ...")
        out["profile"] = profile_model(REFERENCE_N, 12)
    out["meta"]["benchmark_seconds"] = time.perf_counter() - t_start
    out["meta"]["load_average_after"] = list(os.getloadavg())
    out["meta"]["max_rss_mib"] = measure.max_rss_mib()
    return out


def _row(res: dict, n: int) -> dict | None:
    return next((r for r in res["sizes"] if r["agents"] == n), None)


def goals(res: dict) -> list[dict]:
    """Each goal of issue 8 with the measured value and whether this run met it (no failure)."""
    r10, r100 = _row(res, 10_000), _row(res, 100_000)
    lr = res.get("long_run", {})
    value = {
        "ours_over_boltzmann_at_10000": r10["ours_over_boltzmann"] if r10 else None,
        "floor_over_ours_at_10000": r10["floor_over_ours"] if r10 else None,
        "growth_10k_to_100k": (
            (r100["lanthanide"]["month_ms_median"] / r10["lanthanide"]["month_ms_median"])
            / (100_000 / 10_000)
            if r10 and r100
            else None
        ),
        "long_run_seconds": lr.get("total_seconds") if lr.get("months") == 192 else None,
        "long_run_peak_rss_gib": (
            lr["peak_rss_mib"] / 1024 if lr.get("months") == 192 and "peak_rss_mib" in lr else None
        ),
        "default_call_seconds": res["default_scenario"]["paired"]["total_seconds"],
        "default_simulation_seconds": res["default_scenario"]["simulation_seconds"],
        "explorer_month_ms": res["explorer"]["month_ms_median"],
    }
    out = []
    for key, text, op, target in GOALS:
        v = value[key]
        met = None
        if v is not None:
            met = {">=": v >= target, "<=": v <= target, "<": v < target}[op]
        out.append({"goal": key, "text": text, "value": v, "target": target, "met": met})
    return out


def format_report(res: dict) -> str:
    """The printed table and notes."""
    m = res["meta"]
    lines = [
        f"Lanthanide benchmarks{' (quick)' if m['quick'] else ''}: Python {m['python']}, "
        f"numpy {m['numpy']}, Mesa {m['mesa']}, {m['cpus']} CPUs, commit {m['git_commit']}",
        "",
        f"{'agents':>8s} | {'ours':>13s} {'ms/':>7s} {'start-up':>8s} | {'Mesa Boltzmann':>14s} | "
        f"{'numpy floor':>13s} | {'ours /':>9s} {'floor /':>7s}",
        f"{'':>8s} | {'firm-months/s':>13s} {'month':>7s} {'s':>8s} | {'agent-steps/s':>14s} | "
        f"{'firm-months/s':>13s} | {'Boltzmann':>9s} {'ours':>7s}",
        "-" * 96,
    ]
    for r in res["sizes"]:
        o, b, f = r["lanthanide"], r["boltzmann"], r["numpy_floor"]
        lines.append(
            f"{r['agents']:>8,d} | {o['firm_months_per_second']:>13,.0f} "
            f"{o['month_ms_median']:>7.2f} {o['startup_seconds']:>8.2f} | "
            f"{b['agent_steps_per_second']:>14,.0f} | {f['firm_months_per_second']:>13,.0f} | "
            f"{r['ours_over_boltzmann']:>9.2f} {r['floor_over_ours']:>7.1f}"
        )
    lines += [
        "",
        f"peak memory, MiB (tracemalloc){'':>6s}| {'ours':>8s} | {'Boltzmann':>9s} | "
        f"{'numpy floor':>11s}",
    ]
    for r in res["sizes"]:
        lines.append(
            f"{r['agents']:>35,d} | {r['lanthanide']['peak_mib']:>8.1f} | "
            f"{r['boltzmann']['peak_mib']:>9.1f} | {r['numpy_floor']['peak_mib']:>11.1f}"
        )
    lines += [
        "",
        "ours / Boltzmann is the median of the pairs' ratios (each pair: a repeat of ours, then",
        "one of Boltzmann); each pair's ratio, from wall time and (after /) from CPU time:",
    ]
    for r in res["sizes"]:
        if "ours_over_boltzmann_pairs" in r:
            pairs = ", ".join(
                f"{w:.2f}/{c:.2f}"
                for w, c in zip(
                    r["ours_over_boltzmann_pairs"], r["ours_over_boltzmann_cpu_pairs"], strict=True
                )
            )
            lines.append(
                f"{r['agents']:>8,d} | {pairs}; ratio of the median rates "
                f"{r['ours_over_boltzmann_ratio_of_medians']:.2f}"
            )
    lines += ["", "from CPU time: ours / Boltzmann (median pair); floor / ours (fastest repeats)"]
    for r in res["sizes"]:
        if "ours_over_boltzmann_cpu" in r:
            lines.append(
                f"{r['agents']:>8,d} | {r['lanthanide']['firm_months_per_cpu_second']:>13,.0f} "
                f"firm-months per CPU s | {r['ours_over_boltzmann_cpu']:>5.2f} ; "
                f"{r['floor_over_ours_cpu']:>4.1f}"
            )
    ratio = res["ours_over_boltzmann_at_10000"]
    if ratio is not None:
        lines += ["", f"ours / Mesa Boltzmann at 10,000 agents (median pair): {ratio:.2f}"]
    lines.append(
        "engine (abm.engine, auto): "
        + ", ".join(f"{r['agents']:,} firms {r['lanthanide']['engine']}" for r in res["sizes"])
    )
    for r in res["sizes"]:
        o2 = r.get("lanthanide_numpy_engine")
        if o2:
            o, b = r["lanthanide"], r["boltzmann"]
            lines.append(
                f"  at {r['agents']:,} firms the numpy engine: {o2['month_ms_median']:.2f} ms a "
                f"month against {o['month_ms_median']:.2f} on {o['engine']}; ours / Boltzmann "
                f"{o2['firm_months_per_second'] / b['agent_steps_per_second']:.2f} (CPU time "
                f"{o2['firm_months_per_cpu_second'] / b['agent_steps_per_cpu_second']:.2f})"
            )
    su = res.get("engine_startup") or {}
    if su.get("numba_cached") and "once_per_process_seconds" in su["numba_cached"]:
        first = su.get("numba_first_ever") or {}
        cold = (
            f", {first['once_per_process_seconds']:.1f} s the first time on a machine (compiling)"
            if "once_per_process_seconds" in first
            else " (the first time on a machine, compiling: --compile-time)"
        )
        lines.append(
            f"  numba engine, once per process (not in the rates above): "
            f"{su['numba_cached']['once_per_process_seconds']:.2f} s with numba's cache{cold}"
        )
    d = res["default_scenario"]
    w = d["manifest_wall_seconds"]
    peak = f"; peak {d['peak_mib']:.0f} MiB" if d["peak_mib"] is not None else ""
    pw = d["paired"]["manifest_wall_seconds"]
    lines += [
        f"default scenario + counterfactual ({d['months']} months, {d['firm_agents']} firms), "
        f"one process: manifest wall_seconds {w.get('scenario', 0):.2f} + "
        f"{w.get('counterfactual', 0):.2f} = {d['simulation_seconds']:.2f} s "
        f"({d['month_ms']:.1f} ms/month); whole run_scenario call {d['total_seconds']:.2f} s{peak}",
        f"  as `lanthanide run` runs it ({d['paired']['processes']} processes): whole call "
        f"{d['paired']['total_seconds']:.2f} s (runs {pw.get('scenario', 0):.2f} and "
        f"{pw.get('counterfactual', 0):.2f} s, side by side)",
    ]
    e = res["explorer"]
    lines.append(
        f"explorer month at the default size ({e['mode']}): median {e['month_ms_median']:.1f} ms, "
        f"max {e['month_ms_max']:.1f} ms; peak {e['peak_mib']:.0f} MiB"
    )
    for sw in res["sweeps"]:
        lines.append(
            f"sweep of {sw['runs']} runs ({sw['scenario']}, {sw['months']} months, with "
            f"counterfactuals) on {sw['workers']} worker(s): {sw['runs_per_second']:.2f} runs/s "
            f"({sw['runs_per_hour']:,.0f} an hour; {sw['seconds']:.1f} s); peak RSS "
            f"{sw['peak_rss_mib']:.0f} MiB (this process + workers)"
        )
    lr = res["long_run"]
    if "error" in lr:
        lines.append(f"{lr['firms']:,} firms x {lr['months']} months: failed ({lr['error']})")
    else:
        lines.append(
            f"{lr['firms']:,} firms x {lr['months']} months (one run, fresh process): "
            f"{lr['total_seconds']:.1f} s (build {lr['build_seconds']:.1f}, steps "
            f"{lr['step_seconds']:.1f}, table {lr['table_seconds']:.2f}); "
            f"{lr['month_ms_mean']:.0f} ms/month; peak RSS {lr['peak_rss_mib']:.0f} MiB"
        )
    work = res["numpy_work_per_month"]
    mw, fw = work["model"], work["floor"]
    lines.append(
        f"numpy work per month at {work['firms']:,} firms (calls on per-firm arrays; element "
        f"passes in (N, 8) arrays): model {mw['calls_per_month']:.0f} calls, "
        f"{mw['passes_per_month']:.0f} passes; floor {fw['calls_per_month']:.0f} calls, "
        f"{fw['passes_per_month']:.0f} passes"
    )
    lines += ["", "goals (issue 8), as measured in this run:"]
    for g in res["goals"]:
        v = "-" if g["value"] is None else f"{g['value']:.3g}"
        state = {True: "met", False: "NOT met", None: "not measured"}[g["met"]]
        lines.append(f"  {g['text']:<55s} {v:>8s}  {state}")
    la, lb = m.get("load_average_after"), m.get("load_average_before")
    lines.append(
        f"benchmark took {m['benchmark_seconds']:.0f} s; process max RSS {m['max_rss_mib']:.0f} MiB"
        + (f"; load average {lb[0]:.2f} before, {la[0]:.2f} after" if la and lb else "")
    )
    if "profile" in res:
        from benchmarks.hotspots import format_profile

        lines += ["", format_profile(res["profile"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Speed and scale of Lanthanide next to Mesa's Boltzmann model and numpy.",
    )
    ap.add_argument("--quick", action="store_true", help="fewer months and repeats, a 20-run sweep")
    ap.add_argument("--json", metavar="PATH", help="also write all figures to this JSON file")
    ap.add_argument(
        "--profile", action="store_true", help="add cProfile hot spots (10,000 firms, 12 months)"
    )
    ap.add_argument(
        "--compile-time",
        action="store_true",
        help="also time the numba kernels' first compilation (an empty cache; 20-45 s more)",
    )
    args = ap.parse_args(argv)
    res = run(quick=args.quick, profile=args.profile, compile_time=args.compile_time)
    print(format_report(res))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(res, indent=2, default=float) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
