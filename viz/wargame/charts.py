"""Vega-Lite chart specs for the wargame pages (pure functions of the time-series tables).

The wargame needs two things the explorer's charts do not draw: the team's moves as marks on
a timeline, and a "now" line for the month-by-month replay. Countries keep the explorer's
colours (``viz.charts.COUNTRY_COLOURS``).
"""

from __future__ import annotations

import pandas as pd

from abm.constants import COUNTRIES
from viz.charts import COUNTRY_COLOURS as _SHARED_COLOURS

COUNTRY_COLOURS = dict(_SHARED_COLOURS)  # the explorer's (and the CLI's) palette
GOOD_COLOURS = {"La/Ce (light)": "#bcbd22", "NdPr": "#1f77b4", "Dy/Tb (heavy)": "#d62728"}
NAMES = {
    "china_share": "China's share",
    "import_share_from_china": "share from China",
    "lost_output_usd": "lost output",
    "capacity_t_per_year": "capacity",
    "revenue_usd": "revenue",
}
RUN_LABELS = {"scenario": "game", "counterfactual": "no coercion (counterfactual)"}
RUN_DASH = {RUN_LABELS["scenario"]: [1, 0], RUN_LABELS["counterfactual"]: [6, 4]}
GOOD_NAMES = {"light": "La/Ce (light)", "ndpr": "NdPr", "heavy": "Dy/Tb (heavy)"}


def series(
    frames, variable: str, by: str | None = None, runs=("scenario",), **dims
) -> pd.DataFrame:
    """Long table ``date, run, series, value`` of one variable from (scenario, cf) frames.

    Args:
        frames: (scenario, counterfactual) time-series tables, or None.
        variable: the output variable (docs/OUTPUTS.md).
        by: a dimension column whose values become the series (e.g. ``good``, ``country``).
        runs: which runs to include.
        **dims: filters on dimension columns.
    """
    if frames is None:
        return pd.DataFrame(columns=["date", "run", "series", "value"])
    parts = []
    for df, run in zip(frames, ("scenario", "counterfactual"), strict=True):
        if run not in runs:
            continue
        sub = df[df["variable"] == variable]
        for k, v in dims.items():
            sub = sub[sub[k].isin(v) if isinstance(v, list | tuple) else sub[k] == v]
        key = ["date"] + ([by] if by else [])
        g = sub.groupby(key, observed=True)["value"].sum(min_count=1).reset_index()
        g["run"] = RUN_LABELS[run]
        g["series"] = g[by].astype(str) if by else NAMES.get(variable, variable)
        if by == "good":
            g["series"] = g["series"].map(lambda x: GOOD_NAMES.get(x, x))
        parts.append(g[["date", "run", "series", "value"]])
    if not parts:
        return pd.DataFrame(columns=["date", "run", "series", "value"])
    out = pd.concat(parts, ignore_index=True)
    out["date"] = pd.to_datetime(out["date"]).dt.strftime("%Y-%m")
    return out


def line_spec(
    data: pd.DataFrame,
    title: str,
    y_title: str,
    *,
    colours: dict[str, str] | None = None,
    now: str | None = None,
    marks: list[dict] | None = None,
    y_format: str = ",.3~s",
    height: int = 180,
    data_name: str | None = None,
) -> dict:
    """A line chart: colour by series, solid scenario and dashed counterfactual.

    Args:
        data: ``date, run, series, value`` rows (see :func:`series`).
        title: chart title.
        y_title: y-axis title with its unit.
        colours: fixed colour per series (countries and goods keep theirs on every chart).
        now: a ``YYYY-MM`` month to draw as a vertical line (the replay's position).
        marks: ``[{"date": "YYYY-MM", "label": text}]`` drawn as ticks with a tooltip (moves).
        y_format: d3 format of the y axis.
        height: pixels.
        data_name: leave the rows out and read them from the named data source instead (a
            chart whose table grows, :func:`viz.components.LiveChart`; see :func:`records`);
            the colours then come from ``colours`` alone (grey without), not from the rows.
    """
    rows = records(data)
    names = sorted({r["series"] for r in rows})
    colours = colours or {}
    palette = [colours.get(n, "#555555") for n in names]
    colour_scale: dict = {"domain": names, "range": palette}
    if data_name:  # the rows come later: a scale that does not depend on them
        colour_scale = (
            {"domain": list(colours), "range": list(colours.values())}
            if colours
            else {"range": ["#555555"]}
        )
    runs = sorted({r["run"] for r in rows})
    dash = {
        "field": "run",
        "type": "nominal",
        "title": None,
        "scale": {"domain": list(RUN_DASH), "range": list(RUN_DASH.values())},
    }
    layers: list[dict] = [
        {
            "data": {"name": data_name} if data_name else {"values": rows},
            "mark": {"type": "line", "strokeWidth": 2},
            "encoding": {
                "x": {
                    "field": "date",
                    "type": "temporal",
                    "timeUnit": "yearmonth",
                    "title": None,
                    "axis": {"format": "%b %Y", "labelAngle": 0},
                },
                "y": {
                    "field": "value",
                    "type": "quantitative",
                    "title": y_title,
                    "axis": {"format": y_format},
                },
                "color": {
                    "field": "series",
                    "type": "nominal",
                    "title": None,
                    "scale": colour_scale,
                },
                "tooltip": [
                    {"field": "date"},
                    {"field": "series"},
                    {"field": "run"},
                    {"field": "value", "format": ",.3~s"},
                ],
            },
        }
    ]
    if len(runs) > 1:
        layers[0]["encoding"]["strokeDash"] = dash
    if marks:
        layers.append(
            {
                "data": {"values": marks},
                "mark": {"type": "rule", "color": "#444", "strokeDash": [2, 2], "opacity": 0.6},
                "encoding": {
                    "x": {"field": "date", "type": "temporal"},
                    "tooltip": [{"field": "date"}, {"field": "label"}],
                },
            }
        )
    if now:
        layers.append(
            {
                "data": {"values": [{"date": now}]},
                "mark": {"type": "rule", "color": "black", "strokeWidth": 2},
                "encoding": {"x": {"field": "date", "type": "temporal", "timeUnit": "yearmonth"}},
            }
        )
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": title,
        "width": "container",
        "height": height,
        "layer": layers,
        "config": {"legend": {"orient": "bottom"}},
    }


def records(data: pd.DataFrame) -> list[dict]:
    """The rows of a :func:`series` table as JSON-ready dicts (rows without a value left out)."""
    return data.dropna(subset=["value"]).to_dict("records")


def country_colours() -> dict[str, str]:
    """The colour of every country (the same on every page)."""
    return {c: COUNTRY_COLOURS[c] for c in COUNTRIES}
