"""The rows each chart shows, grown month by month (see :mod:`viz.charts`)."""

from __future__ import annotations

import threading
import time

import pandas as pd

from viz.charts import VIEW_OPTIONS, VIEWS, Columns
from viz.components import Table

DEFAULT_OPTIONS = {"prices": "oxide", "stocks": "ndpr", "capacity": "oxide"}
REPLACED = frozenset({"flows"})  # views of the current month only


class LiveViews:
    """Each view's rows, extended by each new month; an epoch per view marks a new table.

    Args:
        options: a view's option (stage or good) where it has one; see
            :data:`viz.charts.VIEW_OPTIONS`.
    """

    def __init__(self, options: dict[str, str] | None = None):
        self.options = {**DEFAULT_OPTIONS, **(options or {})}
        self.tables: dict[str, Table] = {name: Table() for name in VIEWS}
        self.stamp = ""
        self.drawn: dict[str, str] = {}  # view -> the month the page last drew
        self._drawn_changed = threading.Condition()
        self.reporters = {name: self._reporter(name) for name in VIEWS}

    def _reporter(self, name: str):
        def report(stamp: str) -> None:
            with self._drawn_changed:
                self.drawn[name] = stamp
                self._drawn_changed.notify_all()

        return report

    def wait_drawn(self, stamp: str, timeout: float) -> bool:
        """Wait until the page has drawn every view up to month ``stamp`` or later.

        The page reports each chart it has drawn (``reporters[view]``, passed to the chart).
        Waits at most ``timeout`` seconds and returns False then (a page that reports nothing,
        such as a render test, or a closed tab: the caller goes on).
        """
        deadline = time.monotonic() + timeout
        with self._drawn_changed:
            while any(self.drawn.get(name, "") < stamp for name in VIEWS):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._drawn_changed.wait(left)
        return True

    @property
    def rows(self) -> dict[str, list[dict]]:
        """Each view's rows."""
        return {name: t.rows for name, t in self.tables.items()}

    def _kw(self, name: str) -> dict:
        return {VIEW_OPTIONS[name]: self.options[name]} if name in VIEW_OPTIONS else {}

    def spec(self, name: str) -> dict:
        """The Vega-Lite spec of one view, for its current option."""
        return VIEWS[name][1](**self._kw(name))

    def add_month(self, month_rows: pd.DataFrame, date: str) -> None:
        """Add one month (both runs' rows of that month) to every view."""
        cols = Columns(month_rows)  # one conversion shared by every view
        for name, (rows_fn, _spec) in VIEWS.items():
            new = rows_fn(cols, **self._kw(name))
            if name in REPLACED:
                self.tables[name].rows = new
            else:
                self.tables[name].rows.extend(new)
        self.stamp = date

    def set_option(self, name: str, value: str, ts: pd.DataFrame) -> None:
        """Change a view's option and rebuild its rows from the whole history ``ts``."""
        self.options[name] = value
        self.rebuild(name, ts)

    def rebuild(self, name: str, ts: pd.DataFrame) -> None:
        """Recompute one view's rows from the whole history (a new epoch)."""
        rows_fn = VIEWS[name][0]
        table = self.tables[name]
        table.rows = rows_fn(Columns(ts), **self._kw(name)) if not ts.empty else []
        table.epoch += 1

    def clear(self) -> None:
        """Empty every view (a new run)."""
        for table in self.tables.values():
            table.rows = []
            table.epoch += 1
        self.stamp = ""
