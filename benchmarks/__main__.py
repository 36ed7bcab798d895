"""Speed and scale of Lanthanide next to Mesa's reference model and a numpy floor.

``python -m benchmarks`` (about a minute on 2 cores) or ``python -m benchmarks --quick`` (a few
seconds) prints a table; ``--json PATH`` also writes every figure to PATH; ``--profile`` adds the
hot spots of one 10,000-firm run of 12 months (cProfile). Not a test: nothing fails on speed.

Measured in one process, so the ratios mean something on any machine:

- our model: firm-months per second of ``RareEarthModel.step()`` on the default scenario at
  1,000, 10,000 and 100,000 firm agents (start-up is timed apart and excluded from the rate);
- Mesa's Boltzmann wealth model without a space (``benchmarks.boltzmann``), agent-steps per
  second at the same agent counts: what one Python call per agent per step costs in Mesa;
- a numpy floor (``benchmarks.numpy_bound``): the same amount of per-firm array arithmetic as one
  month of our model in a few large calls, no model around it;
- the default scenario with its counterfactual through ``experiments.runner.run_scenario``;
- peak memory of each (tracemalloc, in a separate traced run), and the numpy work per month of
  the model and the floor (``benchmarks.opcount``).
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

from benchmarks import measure
from benchmarks.opcount import count_model, count_numpy_bound

FULL_SIZES = ((1_000, 24), (10_000, 24), (100_000, 12))
QUICK_SIZES = ((1_000, 12), (10_000, 12))
REFERENCE_N = 10_000


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


def run(quick: bool = False, profile: bool = False, progress=print) -> dict:
    """All measurements; returns the figures as one JSON-ready dict."""
    sizes = QUICK_SIZES if quick else FULL_SIZES
    repeats = 2 if quick else 3
    agent_steps = 500_000 if quick else 1_000_000  # per Boltzmann repeat
    t_start = time.perf_counter()
    rows = []
    for n, months in sizes:
        progress(f"  {n:,} agents: our model ...")
        ours = measure.lanthanide(n, months, repeats)
        progress(f"  {n:,} agents: Mesa Boltzmann ...")
        boltz = measure.boltzmann(n, max(5, agent_steps // n), repeats)
        progress(f"  {n:,} agents: numpy floor ...")
        floor = measure.numpy_lower_bound(n, max(months, agent_steps // n), repeats)
        rows.append(
            {
                "agents": n,
                "lanthanide": ours,
                "boltzmann": boltz,
                "numpy_floor": floor,
                "ours_over_boltzmann": ours["firm_months_per_second"]
                / boltz["agent_steps_per_second"],
                "floor_over_ours": floor["firm_months_per_second"] / ours["firm_months_per_second"],
            }
        )
    progress("  default scenario with counterfactual ...")
    default = measure.default_scenario(trace_memory=not quick)
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
        },
        "sizes": rows,
        "ours_over_boltzmann_at_10000": next(
            (r["ours_over_boltzmann"] for r in rows if r["agents"] == REFERENCE_N), None
        ),
        "default_scenario": default,
        "numpy_work_per_month": work,
    }
    if profile:
        from benchmarks.hotspots import profile_model

        progress("  profiling 12 months at 10,000 firms ...")
        out["profile"] = profile_model(REFERENCE_N, 12)
    out["meta"]["benchmark_seconds"] = time.perf_counter() - t_start
    out["meta"]["max_rss_mib"] = measure.max_rss_mib()
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
    ratio = res["ours_over_boltzmann_at_10000"]
    if ratio is not None:
        lines += ["", f"ours / Mesa Boltzmann at 10,000 agents: {ratio:.2f}"]
    d = res["default_scenario"]
    w = d["manifest_wall_seconds"]
    peak = f"; peak {d['peak_mib']:.0f} MiB" if d["peak_mib"] is not None else ""
    lines += [
        f"default scenario + counterfactual ({d['months']} months, {d['firm_agents']} firms): "
        f"manifest wall_seconds {w.get('scenario', 0):.2f} + {w.get('counterfactual', 0):.2f} "
        f"= {d['simulation_seconds']:.2f} s ({d['month_ms']:.1f} ms/month); whole "
        f"run_scenario call {d['total_seconds']:.2f} s{peak}",
    ]
    work = res["numpy_work_per_month"]
    mw, fw = work["model"], work["floor"]
    lines.append(
        f"numpy work per month at {work['firms']:,} firms (calls on per-firm arrays; element "
        f"passes in (N, 8) arrays): model {mw['calls_per_month']:.0f} calls, "
        f"{mw['passes_per_month']:.0f} passes; floor {fw['calls_per_month']:.0f} calls, "
        f"{fw['passes_per_month']:.0f} passes"
    )
    lines.append(
        f"benchmark took {m['benchmark_seconds']:.0f} s; process max RSS {m['max_rss_mib']:.0f} MiB"
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
    ap.add_argument("--quick", action="store_true", help="1,000 and 10,000 agents, 12 months")
    ap.add_argument("--json", metavar="PATH", help="also write all figures to this JSON file")
    ap.add_argument(
        "--profile", action="store_true", help="add cProfile hot spots (10,000 firms, 12 months)"
    )
    args = ap.parse_args(argv)
    res = run(quick=args.quick, profile=args.profile)
    print(format_report(res))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(res, indent=2, default=float) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
