"""Time per month of the explorer's update path at the default size, without a browser.

The explorer (``viz.app.Session.step``) steps a scenario and its counterfactual together, one
month per click or tick (``viz.session.RunPair.step``: both models, data collection, the
month's rows as a table), then adds that month to every chart's rows
(``viz.live.LiveViews.add_month``). This times exactly those two calls, as the page makes them,
with no browser and no Solara rendering. The verdict, which the page recomputes in a thread
off the click path, is timed apart (``RunPair.summary()`` at the last month).

Without the explorer installed (no ``viz.session``), it times what that path is made of: both
models' ``step()`` (data collection included) and each month's rows drained from their
recorders into a table. The mode used is reported with the figures.
"""

from __future__ import annotations

import statistics
import time

import mesa


def _live_views():
    """The explorer's chart rows (``viz.live.LiveViews``), or None without the explorer."""
    try:
        from viz.live import LiveViews
    except ImportError:
        return None
    return LiveViews()


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
    views = _live_views() if mode.startswith("explorer") else None
    step_s, chart_s = [], []
    summary_s = None
    try:
        for _ in range(months):
            t0 = time.perf_counter()
            month = pair.step()
            t1 = time.perf_counter()
            if views is not None:
                views.add_month(month.rows, month.date[:7])
            step_s.append(t1 - t0)
            chart_s.append(time.perf_counter() - t1)
        if hasattr(pair, "summary"):
            t0 = time.perf_counter()
            pair.summary()
            summary_s = time.perf_counter() - t0
    finally:
        pair.close()
    total = [a + b for a, b in zip(step_s, chart_s, strict=True)]

    def traced() -> None:
        p, _ = _pair(scenario, months)
        v = _live_views() if views is not None else None
        try:
            for _ in range(months):
                m = p.step()
                if v is not None:
                    v.add_month(m.rows, m.date[:7])
        finally:
            p.close()

    return {
        "scenario": scenario,
        "mode": mode + (" + LiveViews.add_month (chart rows)" if views is not None else ""),
        "months": months,
        "month_ms_median": 1000 * statistics.median(total),
        "month_ms_max": 1000 * max(total),
        "step_ms_median": 1000 * statistics.median(step_s),
        "chart_rows_ms_median": 1000 * statistics.median(chart_s),
        "summary_ms_at_end": None if summary_s is None else 1000 * summary_s,
        "peak_mib": peak_traced_mib(traced),
    }
