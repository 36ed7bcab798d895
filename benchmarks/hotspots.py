"""Where a month of our model spends its time: cProfile over ``model.step()`` calls only.

cProfile sees Python functions and the C functions they call by name (``numpy.bincount``,
``numpy.array``); numpy operators (``a * b``) are charged to the Python line's function as self
time. Profiling roughly doubles the run time, so read shares, not seconds.
"""

from __future__ import annotations

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


def profile_model(n: int = 10_000, months: int = 12, top: int = 15) -> dict:
    """Profile ``months`` calls of ``model.step()`` at ``n`` firms (start-up not profiled)."""
    import mesa

    from abm.model import RareEarthModel
    from abm.scenario import load_scenario

    model = RareEarthModel(load_scenario("default", firms=n, months=months))
    profiler = cProfile.Profile()
    try:
        profiler.enable()
        for _ in range(months):
            model.step()
        profiler.disable()
    finally:
        mesa.Agent._ids.pop(model, None)
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
