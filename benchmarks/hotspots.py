"""Where a month of our model spends its time, over ``model.step()`` calls only.

Two profilers:

- cProfile (the default; standard library): every Python function and the C functions they call
  by name (``numpy.bincount``, ``numpy.array``); numpy operators (``a * b``) are charged to the
  Python line's function as self time. It roughly doubles the run time, so read shares, not
  seconds. ``lanthanide bench --profile`` appends its lists to the benchmark report.
- pyinstrument (``--sampler``; ``pip install -e ".[profile]"``): a statistical profiler that
  samples the call stack every ``--interval`` seconds, so it barely slows the model down and
  its times are close to real ones; it prints the call tree, or the functions by self time
  (``--flat``), and can write an interactive HTML page (``--html PATH``).

``python -m benchmarks.hotspots [--firms N] [--months M] [--sampler [--flat] [--html PATH]]``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import site
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _where(key: tuple) -> str:
    """``file:line(function)`` with the repository or site-packages prefix removed."""
    filename, line, func = key
    if filename == "~":  # a C function
        return func
    path = filename
    prefixes = [str(ROOT), *site.getsitepackages(), sysconfig.get_paths()["stdlib"]]
    for prefix in sorted(prefixes, key=len, reverse=True):
        if path.startswith(prefix):
            path = path[len(prefix) :].lstrip("/")
            break
    return f"{path}:{line}({func})"


def _rows(stats: pstats.Stats, sort_index: int, top: int, total: float) -> list[dict]:
    entries = sorted(stats.stats.items(), key=lambda kv: kv[1][sort_index], reverse=True)
    rows = []
    for key, (_cc, ncalls, tottime, cumtime, _callers) in entries[:top]:
        rows.append(
            {
                "where": _where(key),
                "calls": ncalls,
                "self_s": tottime,
                "cumulative_s": cumtime,
                "self_share": tottime / total if total else 0.0,
                "cumulative_share": cumtime / total if total else 0.0,
            }
        )
    return rows


def _step_under(start, stop, n: int, months: int) -> None:
    """Build the default scenario at ``n`` firms (not profiled), then step ``months`` months
    between ``start()`` and ``stop()`` of a profiler; the model's agent ids are released after."""
    import mesa

    from abm.model import RareEarthModel
    from abm.scenario import load_scenario

    model = RareEarthModel(load_scenario("default", firms=n, months=months))
    try:
        start()
        for _ in range(months):
            model.step()
        stop()
    finally:
        mesa.Agent._ids.pop(model, None)


def profile_model(n: int = 10_000, months: int = 12, top: int = 15) -> dict:
    """Profile ``months`` calls of ``model.step()`` at ``n`` firms (start-up not profiled)."""
    profiler = cProfile.Profile()
    _step_under(profiler.enable, profiler.disable, n, months)
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    return {
        "firms": n,
        "months": months,
        "profiled_seconds": total,
        "by_cumulative": [
            r for r in _rows(stats, 3, top + 8, total) if "profiler" not in r["where"]
        ][:top],
        "by_self": _rows(stats, 2, top, total),
    }


def format_profile(result: dict) -> str:
    """The two hot-spot lists as text."""
    lines = [
        f"cProfile of {result['months']} months at {result['firms']:,} firms "
        f"({result['profiled_seconds']:.2f} s under the profiler)"
    ]
    for title, key, sort in (
        ("by cumulative time", "by_cumulative", "cumulative"),
        ("by self time", "by_self", "self"),
    ):
        lines.append(f"  {title}:")
        lines.append(f"    {'share':>6s} {'self s':>7s} {'cum s':>7s} {'calls':>7s}  where")
        for r in result[key]:
            lines.append(
                f"    {r[sort + '_share']:>6.1%} {r['self_s']:>7.3f} {r['cumulative_s']:>7.3f} "
                f"{r['calls']:>7d}  {r['where']}"
            )
    return "\n".join(lines)


def sample_model(
    n: int = 10_000,
    months: int = 24,
    interval: float = 0.0002,
    flat: bool = False,
    html: Path | None = None,
) -> str:
    """pyinstrument's report of ``months`` calls of ``model.step()`` at ``n`` firms.

    Raises ImportError when pyinstrument is not installed (it is the optional ``profile`` extra).
    """
    from pyinstrument import Profiler

    profiler = Profiler(interval=interval)
    _step_under(profiler.start, profiler.stop, n, months)
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        tmp = html.with_name(html.name + ".tmp")
        tmp.write_text(profiler.output_html(), encoding="utf-8")
        tmp.replace(html)
    head = f"pyinstrument, {months} months at {n:,} firms, a sample every {interval * 1e3:g} ms"
    return head + "\n" + profiler.output_text(flat=flat, show_all=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.hotspots",
        description="Profile months of the default scenario (start-up not profiled).",
    )
    ap.add_argument("--firms", type=int, default=10_000, help="firm agents (default 10,000)")
    ap.add_argument("--months", type=int, default=24, help="months profiled (default 24)")
    ap.add_argument("--top", type=int, default=25, help="cProfile rows per list (default 25)")
    ap.add_argument("--sampler", action="store_true", help="pyinstrument instead of cProfile")
    ap.add_argument("--interval", type=float, default=0.0002, help="pyinstrument sample, s")
    ap.add_argument("--flat", action="store_true", help="pyinstrument: functions by self time")
    ap.add_argument("--html", type=Path, default=None, help="pyinstrument: write an HTML page")
    args = ap.parse_args(argv)
    for name, value, lo, hi in (
        ("--firms", args.firms, 10, 1_000_000),
        ("--months", args.months, 1, 600),
        ("--top", args.top, 1, 500),
        ("--interval", args.interval, 1e-5, 1.0),
    ):
        if not lo <= value <= hi:
            print(f"hotspots: {name} must be between {lo:g} and {hi:,g}, got {value:g}")
            return 2
    if args.sampler:
        try:
            print(sample_model(args.firms, args.months, args.interval, args.flat, args.html))
        except ImportError:
            print('hotspots: --sampler needs pyinstrument: pip install -e ".[profile]"')
            return 2
        if args.html:
            print(f"wrote {args.html}")
    else:
        print(format_profile(profile_model(args.firms, args.months, args.top)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
