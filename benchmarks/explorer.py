"""Time per month of the explorer's update path at the default size, without a browser.

The explorer steps a scenario and its counterfactual together, one month per tick, and turns
that month's recorded rows into the rows its charts add. When the explorer's session module
(``viz.session.RunPair``) is present, this times its ``step()`` (both models, data collection,
the month's rows as a table) and then, when ``viz.charts`` offers per-view row builders, the
chart rows of every view for the new month. Without it, it times what that path is made of:
both models' ``step()`` (data collection included) and each month's rows drained from their
recorders into a table. The mode used is reported with the figures.
"""

from __future__ import annotations

import statistics
import time

import mesa


def _chart_views():
    """``[(name, rows_fn)]`` of the explorer's per-view row builders, or [] without them."""
    try:
        from viz import charts
    except ImportError:
        return []
    names = ("price_rows", "share_rows", "dependence_rows", "stock_rows", "capacity_rows")
    names += ("lost_rows", "flow_rows")
    return [(n, getattr(charts, n)) for n in names if callable(getattr(charts, n, None))]


def _pair(scenario: str, months: int):
    """A stepping object with ``step()`` and ``close()``, and the mode's description."""
    from abm.scenario import load_scenario

    scn = load_scenario(scenario, months=months)
    try:
        from viz.session import RunPair
    except ImportError:
        return _Emulated(scn), "model step + data collection (scenario and counterfactual)"
    return RunPair(scn), "explorer RunPair.step (scenario and counterfactual)"


class _Emulated:
    """Both runs stepped together, each month's records drained into a table (no viz)."""

    def __init__(self, scn):
        from abm.model import RareEarthModel
        from abm.scenario import counterfactual

        self.models = [
            RareEarthModel(scn, run="scenario"),
            RareEarthModel(counterfactual(scn), run="counterfactual"),
        ]

    def step(self):
        import pandas as pd

        from abm.recorder import Recorder

        frames = []
        for model in self.models:
            model.step()
            rec = model.recorder
            model.recorder = Recorder(rec.run, rec.seed)
            frames.append(rec.frame(model.dates))
        return pd.concat(frames, ignore_index=True)

    def close(self) -> None:
        for model in self.models:
            mesa.Agent._ids.pop(model, None)


def explorer_month(scenario: str = "default", months: int = 48) -> dict:
    """Median and worst time per explorer month over ``months`` months of ``scenario``."""
    from benchmarks.measure import peak_traced_mib

    pair, mode = _pair(scenario, months)
    views = _chart_views() if mode.startswith("explorer") else []
    step_s, chart_s = [], []
    try:
        for _ in range(months):
            t0 = time.perf_counter()
            month = pair.step()
            t1 = time.perf_counter()
            rows = getattr(month, "rows", month)
            for _name, fn in views:
                fn(rows)
            step_s.append(t1 - t0)
            chart_s.append(time.perf_counter() - t1)
    finally:
        pair.close()
    total = [a + b for a, b in zip(step_s, chart_s, strict=True)]

    def traced() -> None:
        p, _ = _pair(scenario, months)
        try:
            for _ in range(months):
                p.step()
        finally:
            p.close()

    return {
        "scenario": scenario,
        "mode": mode,
        "chart_views": [n for n, _ in views],
        "months": months,
        "month_ms_median": 1000 * statistics.median(total),
        "month_ms_max": 1000 * max(total),
        "step_ms_median": 1000 * statistics.median(step_s),
        "chart_rows_ms_median": 1000 * statistics.median(chart_s),
        "peak_mib": peak_traced_mib(traced),
    }
