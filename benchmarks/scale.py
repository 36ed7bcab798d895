"""One long run at scale, for ``benchmarks.measure.long_run`` (run in its own process).

``python -m benchmarks.scale --firms 100000 --months 192`` builds the default scenario with that
many firms, steps it to the horizon (data collection included), builds the long table, and
prints one JSON line: build, step and table seconds, ms per month, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import time


def main(argv: list[str] | None = None) -> int:
    """Run and print the figures as one JSON line."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.scale")
    ap.add_argument("--firms", type=int, default=100_000)
    ap.add_argument("--months", type=int, default=192)
    ap.add_argument("--scenario", default="default")
    args = ap.parse_args(argv)
    import mesa

    from abm.model import RareEarthModel
    from abm.scenario import load_scenario

    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    model = RareEarthModel(load_scenario(args.scenario, firms=args.firms, months=args.months))
    build = time.perf_counter() - t0
    months = []
    t1 = time.perf_counter()
    while model.running and model.month < model.horizon:
        t = time.perf_counter()
        model.step()
        months.append(time.perf_counter() - t)
    steps = time.perf_counter() - t1
    t2 = time.perf_counter()
    df = model.recorder.frame(model.dates)
    table = time.perf_counter() - t2
    mesa.Agent._ids.pop(model, None)
    ordered = sorted(months)
    out = {
        "scenario": args.scenario,
        "firms": int(model.firms.n),
        "months": len(months),
        "build_seconds": build,
        "step_seconds": steps,
        "table_seconds": table,
        "total_seconds": build + steps + table,
        "month_ms_mean": 1000 * steps / max(len(months), 1),
        "month_ms_median": 1000 * ordered[len(ordered) // 2] if ordered else None,
        "month_ms_first_12": 1000 * sum(months[:12]) / max(min(len(months), 12), 1),
        "month_ms_last_12": 1000 * sum(months[-12:]) / max(min(len(months), 12), 1),
        "table_rows": len(df),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_at_start_mib": rss_start,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
