"""The explorer page: pick a scenario, pull levers, press play, watch run and counterfactual.

Served by ``lanthanide explore``. Every browser page gets its own :class:`Session` (built inside
the page component, never at module level, so that two browsers never share a model). The page
turns user actions into scenario inputs and model state into pictures; the model, the
counterfactual and the verdict come from :mod:`abm` and :mod:`experiments`.
"""

from __future__ import annotations

import contextlib
import threading
import time

import solara

from abm.constants import COUNTRIES
from abm.scenario import Scenario, ScenarioError, builtin_names, load_scenario
from viz.charts import COUNTRY_COLOURS, GOOD_LABELS, STAGE_LABELS, VIEWS, fmt_usd
from viz.components import (
    CountryLegend,
    EventsTimeline,
    LeverageMeter,
    LiveChart,
    ScenarioUpload,
)
from viz.levers import (
    MARKET_LEVERS,
    STATE_LEVERS,
    Lever,
    configure,
    current_value,
    load_uploaded,
    parse_seed,
)
from viz.live import REPLACED, LiveViews
from viz.session import RunPair

DEFAULT_SCENARIO = "default"
SUMMARY_EVERY_MONTHS = 12  # while playing, the leverage meter is refreshed this often
SUMMARY_IDLE_SECONDS = 0.4  # after Step clicks, the meter waits for this pause
PAGE_WAIT_SECONDS = 1.0  # while playing, the longest wait for the page to draw a month
SPEEDS = {"1/s": 1.0, "2/s": 2.0, "5/s": 5.0, "10/s": 10.0, "max": 100.0}  # months per second
UPLOAD_PREFIX = "upload: "


def _page_context():
    """The Solara page (virtual kernel) this code runs for, if any (none in ``solara.render``)."""
    try:
        from solara.server import kernel_context

        return kernel_context.get_current_context()
    except (ImportError, RuntimeError):
        return None


class Session:
    """One browser page's explorer: the scenario, its levers, the stepping pair and the charts.

    All changes go through methods that hold ``lock``, so a Step click and the play thread
    never step the models at the same time. Reactive values tell the page what to redraw.
    """

    def __init__(self, scenario: str = DEFAULT_SCENARIO):
        self.lock = threading.RLock()
        self._context = _page_context()  # worker threads update this page's reactive values
        self.source = solara.reactive(scenario)  # a built-in name or "upload: NAME"
        self.uploads: dict[str, Scenario] = {}
        self.upload_error = solara.reactive("")
        self.error = solara.reactive("")
        self.base = load_scenario(scenario)
        self.changes = solara.reactive({})  # lever path -> value, applied on Reset
        self.seed_text = solara.reactive(str(self.base.seed))
        self.firms = solara.reactive(self.base.firms)
        self.state_shown = solara.reactive(self.base.coercer or "China")
        self.tick = solara.reactive(0)  # bumped after every month
        self.run_id = solara.reactive(0)  # bumped on every reset
        self.playing = solara.reactive(False)
        self.speed = solara.reactive("5/s")
        self.summary = solara.reactive(None)
        self.applied: dict = {}  # the changes the current run uses
        self.pair: RunPair | None = None
        self.views = LiveViews()
        self._summary_busy = False
        self._summary_timer: threading.Timer | None = None
        self.reset()

    # ------------------------------------------------------------ scenario and levers

    def scenario_for(self, source: str) -> Scenario:
        """The base scenario of a built-in name or an upload."""
        if source.startswith(UPLOAD_PREFIX):
            return self.uploads[source[len(UPLOAD_PREFIX) :]]
        return load_scenario(source)

    def choose(self, source: str) -> None:
        """Switch scenario: its own levers, seed and firms, and a fresh run."""
        with self.lock:
            self.playing.value = False
            self.base = self.scenario_for(source)
            self.source.value = source
            self.changes.value = {}
            self.seed_text.value = str(self.base.seed)
            self.firms.value = self.base.firms
            self.reset()

    def upload(self, name: str, text: str | None) -> None:
        """Validate an uploaded TOML; on success select it, else show the loader's message."""
        try:
            scn = load_uploaded(name, text)
        except ScenarioError as exc:
            self.upload_error.value = str(exc)
            return
        self.upload_error.value = ""
        self.uploads[name] = scn
        self.choose(UPLOAD_PREFIX + name)

    def value(self, path: str):
        """A lever's value as the next Reset will use it."""
        return self.changes.value.get(path, current_value(self.base, path))

    def set_lever(self, path: str, value) -> None:
        """Change a lever (takes effect on Reset)."""
        changes = dict(self.changes.value)
        if value == current_value(self.base, path):
            changes.pop(path, None)
        else:
            changes[path] = value
        self.changes.value = changes

    @property
    def pending(self) -> bool:
        """True when the controls differ from what the current run uses."""
        if self.pair is None:
            return True
        try:
            seed = parse_seed(self.seed_text.value)
        except ScenarioError:
            return True
        return (
            self.changes.value != self.applied
            or seed != self.pair.seed
            or int(self.firms.value) != self.pair.scenario.firms
        )

    # ------------------------------------------------------------ running

    def reset(self) -> None:
        """Start again from month 0 with the current controls."""
        with self.lock:
            self.playing.value = False
            try:
                seed = parse_seed(self.seed_text.value)
                scn = configure(
                    self.base, self.changes.value, seed=seed, firms=int(self.firms.value)
                )
            except ScenarioError as exc:
                self.error.value = str(exc)
                return
            self.error.value = ""
            if self.pair is not None:
                self.pair.close()
            self.pair = RunPair(scn, seed)
            self.applied = dict(self.changes.value)
            self.views.clear()
            self.summary.value = None
            self.run_id.value += 1
            self.tick.value = 0

    def step(self) -> bool:
        """Advance one month; returns False at the horizon."""
        with self.lock:
            pair = self.pair
            if pair is None or pair.done:
                return False
            month = pair.step()
            self.views.add_month(month.rows, month.date[:7])
            self.tick.value += 1
            playing = self.playing.value
        if pair.done or (playing and pair.month % SUMMARY_EVERY_MONTHS == 0):
            self.refresh_summary()
        elif not playing:
            self.refresh_summary(delay=SUMMARY_IDLE_SECONDS)  # once the clicks pause
        return True

    def refresh_summary(self, delay: float = 0.0) -> None:
        """Recompute the verdict so far, in a thread, so that the charts never wait for it.

        With ``delay``, the work starts only once no other request came for that long (a burst
        of Step clicks costs one summary).
        """
        if self._summary_timer is not None:
            self._summary_timer.cancel()
        pair, run = self.pair, self.run_id.value
        if pair is None or pair.month == 0:
            return

        def work():
            if self._summary_busy:
                return
            self._summary_busy = True
            try:
                with self._context or contextlib.nullcontext():
                    summary = pair.summary()
                    if run == self.run_id.value:
                        self.summary.value = summary
            finally:
                self._summary_busy = False

        self._summary_timer = threading.Timer(delay, work)
        self._summary_timer.daemon = True
        self._summary_timer.start()

    def set_option(self, view: str, value: str) -> None:
        """Change a chart's stage or good."""
        with self.lock:
            ts = self.pair.timeseries if self.pair else None
            if ts is None or ts.empty:
                self.views.options[view] = value
                self.views.tables[view].epoch += 1
            else:
                self.views.set_option(view, value, ts)
            self.tick.value += 1

    def play_loop(self) -> None:
        """Step until paused or at the horizon, at the chosen speed.

        A month is made while the page draws the one before, and the next waits until the page
        has drawn that one (at most ``PAGE_WAIT_SECONDS``), so that playing never outruns the
        page: on a slow machine "max" becomes the page's own pace, and the page stays
        responsive (Pause acts at once).
        """
        while self.playing.value:
            t0 = time.perf_counter()
            shown = self.views.stamp  # the month the page is drawing while the next one is made
            if not self.step():
                self.playing.value = False
                break
            self.views.wait_drawn(shown, PAGE_WAIT_SECONDS)
            wait = 1.0 / SPEEDS.get(self.speed.value, 5.0) - (time.perf_counter() - t0)
            if wait > 0:
                time.sleep(wait)
        self.refresh_summary()

    def close(self) -> None:
        """Stop and release the models."""
        self.playing.value = False
        if self.pair is not None:
            self.pair.close()


# ---------------------------------------------------------------- controls


SHORT_UNITS = {
    "days of use": "days",
    "months without concession": "months",
    "months": "months",
    "US$/kg": "US$/kg",
}


def _lever_label(lever: Lever, value) -> str:
    """``label: value unit``, short enough for the sidebar."""
    unit = SHORT_UNITS.get(lever.unit, "")
    if lever.unit.startswith("US$/yr"):
        shown = f"{fmt_usd(value)}/yr"
    elif lever.kind == "int":
        shown = f"{int(value)} {unit}".strip()
    elif lever.unit.startswith("share") or lever.hi == 1.0:
        shown = f"{float(value):.0%}"
    else:
        shown = f"{float(value):g} {unit}".strip()
    return f"{lever.label}: {shown}"


@solara.component
def LeverControl(session: Session, prefix: str, lever: Lever):
    """One lever as a select, switch or slider, labelled with its value and unit."""
    path = f"{prefix}.{lever.field}"
    value = session.value(path)
    label = lever.label
    if lever.kind == "choice":
        solara.Select(
            label=label,
            values=list(lever.choices),
            value=value,
            on_value=lambda v: session.set_lever(path, v),
        )
    elif lever.kind == "bool":
        solara.Switch(label=label, value=bool(value), on_value=lambda v: session.set_lever(path, v))
    elif lever.unit.startswith("US$/yr"):  # shown in US$ millions per year

        def on_m(v):
            session.set_lever(path, float(v) * 1e6)

        solara.SliderFloat(
            label=_lever_label(lever, value),
            value=value / 1e6,
            min=0.0,
            max=lever.hi / 1e6,
            step=lever.step / 1e6,
            on_value=on_m,
            thumb_label=False,
        )
    elif lever.kind == "int":
        solara.SliderInt(
            label=_lever_label(lever, value),
            value=int(value),
            min=int(lever.lo),
            max=int(lever.hi),
            step=int(lever.step or 1),
            on_value=lambda v: session.set_lever(path, int(v)),
            thumb_label=False,
        )
    else:
        solara.SliderFloat(
            label=_lever_label(lever, value),
            value=float(value),
            min=float(lever.lo),
            max=float(lever.hi),
            step=float(lever.step or 0.01),
            on_value=lambda v: session.set_lever(path, float(v)),
            thumb_label=False,
        )


def _heading(text: str) -> None:
    solara.Text(text, style={"font-weight": "600", "font-size": "14px", "margin-top": "6px"})


@solara.component
def ScenarioPanel(session: Session):
    """Scenario picker, upload, seed, firms and each state's levers."""
    names = builtin_names() + [UPLOAD_PREFIX + n for n in session.uploads]
    solara.Select(
        label="Scenario",
        values=names,
        value=session.source.value,
        on_value=session.choose,
    )
    solara.Text(session.base.description, style={"font-size": "12px", "color": "#555"})
    ScenarioUpload(on_upload=session.upload)
    if session.upload_error.value:
        solara.Error(session.upload_error.value, classes=["lanthanide-upload-error"])
    with solara.Row():
        solara.InputText("Seed", value=session.seed_text, continuous_update=False)
    solara.SliderInt(
        f"Firm agents: {session.firms.value:,}",
        value=session.firms,
        min=50,
        max=5000,
        step=50,
        thumb_label=False,
    )
    _heading("Levers (take effect on Reset)")
    solara.Select(
        label="State",
        values=list(COUNTRIES),
        value=session.state_shown.value,
        on_value=session.state_shown.set,
    )
    country = session.state_shown.value
    colour = COUNTRY_COLOURS.get(country, "#333")
    solara.HTML(
        tag="div",
        unsafe_innerHTML=f"<div style='height:4px;background:{colour};margin-bottom:6px'></div>",
    )
    for lever in STATE_LEVERS:
        LeverControl(session, f"countries.{country}", lever)
    _heading("World")
    for lever in MARKET_LEVERS:
        LeverControl(session, "market", lever)
    n = len(session.changes.value)
    if n:
        solara.Text(f"{n} lever(s) changed: " + ", ".join(sorted(session.changes.value)))


@solara.component
def RunControls(session: Session, tick: int):
    """Reset, Step, Play/Pause, speed and the month clock (``tick``: the month counter)."""
    pair = session.pair
    playing = session.playing.value

    def toggle():
        session.playing.value = not session.playing.value

    solara.use_thread(
        lambda: session.play_loop() if playing else None,
        dependencies=[playing, session.run_id.value],
        intrusive_cancel=False,  # cancelling by tracing would slow every line of the model
    )
    with solara.Row(style={"align-items": "center", "flex-wrap": "wrap"}):
        solara.Button(
            "Reset",
            icon_name="mdi-restart",
            on_click=session.reset,
            color="primary" if session.pending else None,
            outlined=not session.pending,
        )
        solara.Button(
            "Step",
            icon_name="mdi-step-forward",
            on_click=session.step,
            disabled=pair is None or pair.done or playing,
        )
        solara.Button(
            "Pause" if playing else "Play",
            icon_name="mdi-pause" if playing else "mdi-play",
            on_click=toggle,
            disabled=pair is None or pair.done,
        )
        solara.ToggleButtonsSingle(value=session.speed, values=list(SPEEDS))
        if pair is not None:
            shown = pair.dates[-1][:7] if pair.dates else f"{pair.next_date} (not started)"
            solara.Text(
                f"{pair.scenario.name}, seed {pair.seed}: {shown}, month {pair.month} of "
                f"{pair.horizon}",
                classes=["lanthanide-clock"],
                style={"font-weight": "600"},
            )
    if session.error.value:
        solara.Error(session.error.value)
    elif session.pending:
        solara.Info("Settings changed: press Reset to run with them.", dense=True)


# ---------------------------------------------------------------- views


OPTION_CHOICES = {
    "prices": ("stage", {"concentrate": "concentrate", "oxide": "oxide", "magnet": "magnet"}),
    "stocks": ("good", dict(GOOD_LABELS)),
    "capacity": ("stage", {k: v for k, v in STAGE_LABELS.items()}),
}
CAPACITY_STAGES = {"mining": "concentrate", "separation": "oxide", "magnets": "magnet"}


@solara.component
def ViewCard(session: Session, name: str, tick: int, playing: bool = False):
    """One live chart, with its stage or good choice where it has one.

    While ``playing``, the chart reports each month it has drawn (the play loop waits for it).
    """
    views = session.views
    spec = solara.use_memo(lambda: views.spec(name), [views.options.get(name)])
    with solara.Card(margin=0, elevation=1, classes=["lanthanide-view", f"lanthanide-view-{name}"]):
        if name in OPTION_CHOICES:
            _kind, labels = OPTION_CHOICES[name]
            keys = list(labels)
            if name == "capacity":
                keys = ["concentrate", "oxide", "magnet", "recycling"]
            shown = [labels[k] if name != "prices" else k for k in keys]
            current = views.options[name]
            solara.ToggleButtonsSingle(
                value=shown[keys.index(current)],
                values=shown,
                on_value=lambda label: session.set_option(name, keys[shown.index(label)]),
                dense=True,
            )
        table = views.tables[name]
        LiveChart(
            spec,
            table,
            table.version,
            views.stamp,
            replace=name in REPLACED,
            on_drawn=views.reporters[name] if playing else None,
        )


@solara.component
def Meter(session: Session, tick: int):
    """The leverage meter, fed by the latest summary."""
    pair = session.pair
    LeverageMeter(session.summary.value, pair.month if pair else 0, pair.horizon if pair else 0)


@solara.component
def Timeline(session: Session, n_events: int, run_id: int):
    """Events of the run (re-drawn when there are new ones)."""
    pair = session.pair
    events = pair.events() if pair else []
    EventsTimeline(events)


@solara.component
def Export(session: Session, started: bool, run_id: int):
    """Downloads of the current run (the months so far): the files ``lanthanide run`` writes."""
    pair = session.pair
    if pair is None or not started:
        solara.Text("Exports appear after the first month.", style={"color": "#777"})
        return
    stem = f"{pair.scenario.name}-seed{pair.seed}"
    with solara.Row(style={"flex-wrap": "wrap"}):
        solara.FileDownload(
            pair.parquet_bytes, filename=f"{stem}-timeseries.parquet", label="timeseries.parquet"
        )
        solara.FileDownload(
            pair.summary_bytes,
            filename=f"{stem}-summary.json",
            label="summary.json",
            mime_type="application/json",
        )
        solara.FileDownload(
            pair.headline_png,
            filename=f"{stem}-headline.png",
            label="charts (headline.png)",
            mime_type="image/png",
        )
        solara.FileDownload(
            lambda: _charts_json(pair),
            filename=f"{stem}-charts.vl.json",
            label="charts (Vega-Lite)",
            mime_type="application/json",
        )


def _charts_json(pair: RunPair) -> bytes:
    import json

    from viz.charts import chart

    ts = pair.timeseries
    return json.dumps({name: chart(name, ts) for name in VIEWS}, default=str).encode()


CSS = """
.lanthanide-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(640px, 1fr));
  gap: 12px; }
.lanthanide-why { font-size: 14px; color: #333; }
.v-card.lanthanide-meter { padding: 10px 14px; }
.v-input__slider .v-input__slot { flex-wrap: wrap; }
.v-input__slider .v-label { width: 100%; white-space: normal; font-size: 13px; height: auto; }
.v-card.lanthanide-view { padding: 6px 8px; overflow-x: auto; }
"""


@solara.component
def Page():
    """The explorer, with a session of its own for this browser page."""
    session = solara.use_memo(Session, [])
    solara.use_effect(lambda: session.close, [])
    Explorer(session)


@solara.component
def Explorer(session: Session):
    """The explorer's layout around a given session: controls in the sidebar, views beside."""
    solara.Title("Lanthanide explorer")
    solara.Style(CSS)
    with solara.Sidebar():
        ScenarioPanel(session)
    Dashboard(session)


@solara.component
def Dashboard(session: Session):
    """Everything that changes each month; the one component that listens to the clock."""
    tick = session.tick.value
    run_id = session.run_id.value
    with solara.Column(style={"padding": "8px"}):
        RunControls(session, tick)
        Meter(session, tick)
        CountryLegend()
        with solara.Div(classes=["lanthanide-grid"]):
            for name in ("prices", "share", "dependence", "stocks", "capacity", "lost", "flows"):
                ViewCard(session, name, tick, session.playing.value)
            pair = session.pair
            Timeline(session, len(pair.models["scenario"].policy.log) if pair else 0, run_id)
        _heading("Export the current run (the months so far)")
        Export(session, bool(pair and pair.month), run_id)
