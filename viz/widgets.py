"""A Vega-Lite chart widget that grows month by month without resending its history.

The browser side (``vega_chart.vue``) compiles the spec once and inserts each new chunk of rows
into the live Vega view, so the cost of a month's redraw does not grow with the history shown.
"""

from __future__ import annotations

from pathlib import Path

import ipyvuetify as v
import traitlets


class VegaChart(v.VuetifyTemplate):
    """A Vega-Lite 5 chart whose data source ``"table"`` is filled by :meth:`show`.

    A spec whose ``data`` is inline (``{"values": [...]}``) is drawn as it is.

    Traits (synced with the browser):
        spec: the Vega-Lite spec.
        full: ``{"epoch", "rows", "stamp"}``: the whole table (sent on a new epoch or resync).
        chunk: ``{"epoch", "start", "rows", "stamp", "replace"}``: rows added since the last
            chunk (``replace``: the rows are the whole table).

    ``on_drawn(stamp)`` (not synced) is called when the page has drawn the table up to
    ``stamp``; the explorer's play loop waits for it, so that playing never outruns the page.
    The page reports only while ``on_drawn`` is set (each report is a message to the server).
    """

    template_file = str(Path(__file__).with_name("vega_chart.vue"))
    # Python owns these: what the page sends back is not echoed to it again (an echo arrives as
    # a new chunk and would be drawn again).
    spec = traitlets.Dict().tag(sync=True, echo_update=False)
    full = traitlets.Dict().tag(sync=True, echo_update=False)
    chunk = traitlets.Dict().tag(sync=True, echo_update=False)
    on_drawn = traitlets.Callable(None, allow_none=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._rows: list[dict] = []
        self._sent = 0
        self._epoch: int | None = None
        self._stamp = ""

    def show(self, rows: list[dict], epoch: int, stamp: str = "", replace: bool = False) -> None:
        """Bring the browser's table up to ``rows``, sending only what it does not have.

        Args:
            rows: the whole table as it stands (a list that grows; it is not copied).
            epoch: changes whenever ``rows`` is a new table rather than a longer one.
            stamp: a label of what the table now shows (the month), set on the chart's
                element as ``data-stamp`` once drawn.
            replace: the rows replace the table (a view of one month, such as trade flows).
        """
        self._stamp = stamp
        ack = self.on_drawn is not None  # the page reports back only when someone listens
        if epoch != self._epoch:
            self._epoch, self._rows, self._sent = epoch, rows, len(rows)
            self.full = {"epoch": epoch, "rows": list(rows), "stamp": stamp, "ack": ack}
            return
        self._rows = rows
        if replace:
            self._sent = len(rows)
            self.chunk = {
                "epoch": epoch,
                "replace": True,
                "rows": list(rows),
                "stamp": stamp,
                "ack": ack,
            }
            return
        if len(rows) < self._sent:  # shorter: treat as a new table
            self._sent = len(rows)
            self.full = {"epoch": epoch, "rows": list(rows), "stamp": stamp, "ack": ack}
            return
        start, self._sent = self._sent, len(rows)
        self.chunk = {
            "epoch": epoch,
            "start": start,
            "rows": rows[start:],
            "stamp": stamp,
            "ack": ack,
        }

    def vue_drawn(self, stamp, *_args) -> None:
        """Called by the page once Vega has drawn the rows up to ``stamp``."""
        if self.on_drawn is not None:
            self.on_drawn(str(stamp or ""))

    def vue_resync(self, *_args) -> None:
        """The browser missed a chunk: send the whole table again."""
        self._sent = len(self._rows)
        self.full = {
            "epoch": self._epoch,
            "rows": list(self._rows),
            "stamp": self._stamp,
            "ack": self.on_drawn is not None,
            "resync": self.full.get("resync", 0) + 1,
        }


class TomlUpload(v.VuetifyTemplate):
    """A file picker that reads one small text file in the browser and hands it to Python.

    ``on_upload(name, text)`` is called with the file's name and its text (``text`` is None
    when the file is larger than ``max_bytes``).
    """

    template_file = str(Path(__file__).with_name("toml_upload.vue"))
    label = traitlets.Unicode("Upload a scenario (.toml)").tag(sync=True)
    max_bytes = traitlets.Int(1_000_000).tag(sync=True)
    on_upload = traitlets.Callable(None, allow_none=True)

    def vue_upload(self, data, *_args) -> None:
        """Called by the browser with ``{"name", "text", "size"}``."""
        if self.on_upload is not None:
            self.on_upload(str(data.get("name") or "upload.toml"), data.get("text"))
