"""Small Solara components of the explorer, reusable on other pages (the wargame's dashboards).

- :func:`Chart`: a static Vega-Lite chart (for instance ``Chart(charts.chart("prices", ts))``).
- :func:`LiveChart`: a chart that grows month by month, sending only the new rows.
- :func:`LeverageMeter`: the verdict as it stands, with its three gauges and one line of why.
- :func:`EventsTimeline`: measures started, lifted and ended, newest first.
- :func:`CountryLegend`: the country colours used by every chart.
- :func:`ScenarioUpload`: a .toml file picker validated by the scenario loader.

Every component takes plain values (dicts, lists, strings) so that it can be fed from a live
:class:`viz.session.RunPair` or from a finished run's files.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import solara

from viz.charts import COUNTRY_COLOURS, fmt_usd
from viz.widgets import TomlUpload, VegaChart

VERDICT_STYLE = {
    "succeeded": ("#009E73", "leverage worked: a concession without lasting losses"),
    "backfired": ("#D55E00", "leverage backfired: China lost share, revenue or rivals built up"),
    "mixed": ("#E69F00", "mixed: a concession, but at a cost to China"),
    "no_effect": ("#777777", "no effect: no concession and no lasting damage to China"),
}


@solara.component
def Chart(spec: dict):
    """A static Vega-Lite 5 chart (data inline, e.g. from :func:`viz.charts.chart`)."""
    return VegaChart.element(spec=spec)


class Table:
    """The rows of a growing chart, held by reference.

    Not a list on purpose: Solara's renderer walks into list and dict arguments of components
    (to find nested elements), which would cost time in proportion to the history.

    Attributes:
        rows: the whole table so far (JSON-ready dicts); extend it in place as months come.
        epoch: increase it when ``rows`` becomes a new table rather than a longer one.
    """

    def __init__(self, rows: list[dict] | None = None, epoch: int = 0):
        self.rows: list[dict] = rows if rows is not None else []
        self.epoch = epoch

    @property
    def version(self) -> tuple[int, int]:
        """(epoch, number of rows): changes whenever there is something new to show."""
        return (self.epoch, len(self.rows))


@solara.component
def LiveChart(
    spec: dict,
    table: Table,
    version=None,
    stamp: str = "",
    replace: bool = False,
    on_drawn: Callable[[str], None] | None = None,
):
    """A Vega-Lite chart of a table that grows: only rows the browser lacks are sent.

    Args:
        spec: the chart's spec without data (its data source is named ``"table"``).
        table: the rows so far (see :class:`Table`).
        version: pass ``table.version`` (so that the component redraws when rows are added).
        stamp: what the rows now cover (the last month), shown on the element as ``data-stamp``.
        replace: the table is replaced each time (a one-month view such as trade flows).
        on_drawn: called with the stamp the page has drawn (pass the same function each time).
    """
    el = VegaChart.element(spec=spec, on_drawn=on_drawn)

    def push():
        solara.get_widget(el).show(table.rows, table.epoch, stamp, replace)

    solara.use_effect(push, [version, stamp, table])
    return el


def _pct(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:+.{digits}%}"


def meter_figures(summary: dict) -> dict:
    """The leverage meter's numbers from a ``summary.json`` dict (the CLI's outcomes).

    Returns:
        ``verdict``, ``concession`` (text), ``share_delta_pp`` (China's share of world mining,
        last 12 months, against the counterfactual), ``revenue_delta_share`` (China's discounted
        revenue against the counterfactual) and ``why`` (the first line of the explanation).
    """
    o = summary.get("outcomes", {})
    conc = summary.get("concession") or {}
    share = o.get("coercer_share_mining_end", {})
    rev = o.get("coercer_revenue_discounted_usd", {})
    d_share = share.get("delta")
    d_rev = None
    if rev.get("counterfactual"):
        d_rev = rev.get("delta", 0.0) / rev["counterfactual"]
    target = summary.get("target", "the target")
    return {
        "verdict": summary.get("verdict"),
        "concession": (
            f"{target} conceded in {conc.get('date')}" if conc.get("obtained") else "no concession"
        ),
        "share_delta_pp": None if d_share is None else 100.0 * d_share,
        "revenue_delta_share": d_rev,
        "revenue_delta_usd": rev.get("delta"),
        "why": (summary.get("explanation") or [""])[0],
    }


@solara.component
def LeverageMeter(summary: dict | None, month: int = 0, horizon: int = 0):
    """The headline: the verdict so far, concession, China's share and revenue deltas.

    Args:
        summary: a ``summary.json`` dict (of the months so far), or None before the first month.
        month: months simulated.
        horizon: the scenario's horizon.
    """
    with solara.Card(classes=["lanthanide-meter"], margin=0, elevation=1):
        if not summary:
            solara.Text("Leverage meter: press Step or Play to start the month clock.")
            return
        f = meter_figures(summary)
        colour, meaning = VERDICT_STYLE.get(f["verdict"] or "", ("#777777", "no verdict yet"))
        so_far = "" if month >= horizon else f" (so far: month {month} of {horizon})"
        with solara.Row(style={"align-items": "center", "flex-wrap": "wrap", "gap": "18px"}):
            solara.HTML(
                tag="div",
                unsafe_innerHTML=(
                    f"<span class='lanthanide-verdict' style='background:{colour};color:white;"
                    f"padding:4px 12px;border-radius:14px;font-weight:600'>"
                    f"{(f['verdict'] or '-').replace('_', ' ')}</span>"
                ),
            )
            _gauge("concession", f["concession"])
            _gauge(
                "China's share of world mining",
                "-"
                if f["share_delta_pp"] is None
                else f"{f['share_delta_pp']:+.1f} pp vs counterfactual",
            )
            rev = "-"
            if f["revenue_delta_share"] is not None:
                rev = (
                    f"{_pct(f['revenue_delta_share'])} ({fmt_usd(f['revenue_delta_usd'])}) "
                    "vs counterfactual"
                )
            _gauge("China's rare-earth revenue (discounted)", rev)
        solara.Text(
            f"Verdict{so_far}: {meaning}. Largest reason: {f['why']}.",
            classes=["lanthanide-why"],
        )


def _gauge(label: str, value: str) -> None:
    with solara.Column(gap="0px"):
        solara.Text(label, style={"font-size": "12px", "color": "#555"})
        solara.Text(value, style={"font-size": "15px", "font-weight": "600"})


def group_events(events: list) -> list[tuple[str, str, str, str, int]]:
    """Repeated measures in one line: ``(first date, last date, who, text, times)``, newest first.

    Events whose text differs only in numbers (a state's ``finance`` decision each month, with a
    new id each time) are one group; the text shown is the latest.
    """
    groups: dict[tuple[str, str], list] = {}
    for date, who, text in events:
        key = (str(who), re.sub(r"\d+", "#", str(text)))
        g = groups.get(key)
        if g is None:
            groups[key] = [date, date, who, text, 1]
        else:
            g[1], g[3], g[4] = date, text, g[4] + 1
    out = [tuple(g) for g in groups.values()]
    return sorted(out, key=lambda g: (g[1], g[0]), reverse=True)


@solara.component
def EventsTimeline(events: list, limit: int = 30, title: str = "Events and policy changes"):
    """Measures started, lifted or ended, newest first; repeats shown once with their count.

    Args:
        events: ``(date 'YYYY-MM', who, text)`` tuples, oldest first (``RunPair.events()`` or
            the rows of ``events.csv``).
        limit: the most lines shown.
        title: the card's title.
    """
    with solara.Card(title, margin=0, elevation=1, classes=["lanthanide-events"]):
        if not events:
            solara.Text("No measures yet.", style={"color": "#777"})
            return
        grouped = group_events(events)
        lines = []
        for first, last, who, text, times in grouped[:limit]:
            colour = COUNTRY_COLOURS.get(who, "#555555")
            when = first if times == 1 else f"{first} to {last}"
            more = "" if times == 1 else f" <span style='color:#777'>({times} times)</span>"
            lines.append(
                f"<div><span style='font-family:monospace'>{when}</span> "
                f"<b style='color:{colour}'>{_escape(who)}</b> {_escape(text)}{more}</div>"
            )
        if len(grouped) > limit:
            lines.append(f"<div style='color:#777'>... and {len(grouped) - limit} earlier</div>")
        solara.HTML(
            tag="div",
            unsafe_innerHTML="".join(lines),
            style={"max-height": "300px", "overflow-y": "auto", "font-size": "13px"},
        )


def _escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@solara.component
def CountryLegend():
    """A row of colour chips: the one colour each country has in every chart."""
    chips = "".join(
        f"<span style='white-space:nowrap;margin-right:12px'><span style='display:inline-block;"
        f"width:12px;height:12px;border-radius:2px;background:{c};margin-right:4px;"
        f"vertical-align:-1px'></span>{name}</span>"
        for name, c in COUNTRY_COLOURS.items()
    )
    solara.HTML(tag="div", unsafe_innerHTML=chips, style={"font-size": "13px"})


@solara.component
def ScenarioUpload(on_upload: Callable[[str, str | None], None], label: str = ""):
    """A file picker for a scenario ``.toml``; ``on_upload(name, text)`` gets its content."""
    return TomlUpload.element(
        on_upload=on_upload, label=label or "Upload a scenario (.toml)", max_bytes=1_000_000
    )
