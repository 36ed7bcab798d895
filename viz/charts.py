"""Charts of a run beside its counterfactual, as pure functions of the tidy time series.

Every view has two halves, so that the explorer can grow a chart month by month:

- ``<view>_rows(ts, ...)`` takes the long table of ``timeseries.parquet`` (or any slice of it,
  such as one month) and returns the chart's own small table as a list of JSON-ready dicts.
  Applied to each new month it gives exactly the rows it would give on the whole history
  (except :func:`flow_rows`, which shows one month).
- ``<view>_spec(...)`` returns the Vega-Lite 5 specification without data; its data source is
  named ``"table"``.

:func:`chart` joins the two into one self-contained Vega-Lite spec (data inline), for a static
figure (a debrief, a notebook, an export). Colours are fixed: one colour per country everywhere
(:data:`COUNTRY_COLOURS`, the Okabe-Ito colour-blind-safe palette), the run solid and the
counterfactual dashed.

Nothing here computes model quantities: the functions select, relabel and convert units of
recorded variables (see docs/OUTPUTS.md for their definitions).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from abm.constants import COUNTRIES, SECTORS
from experiments.charts import COUNTRY_COLOURS as _CLI_COLOURS

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"

# One colour per country everywhere, the same as the command line's PNG charts: the Okabe-Ito
# colour-blind-safe palette (Okabe & Ito 2008, "Color Universal Design"), grey for the rest.
COUNTRY_COLOURS: dict[str, str] = dict(_CLI_COLOURS)
OUTSIDE_CHINA = "#333333"  # prices outside China (a world aggregate, not one country)

INVENTORIES = "manufacturers' inventories"
STOCKPILES = "state stockpiles"
RUN = "this run"
COUNTERFACTUAL = "counterfactual"
RUN_LABELS = {"scenario": RUN, "counterfactual": COUNTERFACTUAL}
GOOD_LABELS = {"light": "Light (La, Ce)", "ndpr": "NdPr", "heavy": "Dy/Tb (heavy)"}
STAGE_LABELS = {
    "concentrate": "mining",
    "oxide": "separation",
    "magnet": "magnets",
    "recycling": "recycling",
}
SEGMENT_LABELS = {"china_domestic": "inside China", "world": "outside China"}
SECTOR_LABELS = {s: s.capitalize() for s in SECTORS}

WIDTH = 280  # width of one small multiple, px
HEIGHT = 160


# ---------------------------------------------------------------------------- helpers


def country_scale() -> dict:
    """The Vega-Lite colour scale that gives each country its colour."""
    return {"domain": list(COUNTRY_COLOURS), "range": list(COUNTRY_COLOURS.values())}


def _run_dash(legend: bool = True) -> dict:
    enc = {
        "field": "run",
        "type": "nominal",
        "title": None,
        "scale": {"domain": [RUN, COUNTERFACTUAL], "range": [[1, 0], [5, 3]]},
    }
    if not legend:
        enc["legend"] = None
    else:
        enc["legend"] = {"orient": "bottom", "symbolStrokeColor": "#333", "symbolType": "stroke"}
    return enc


def _date_x(title: str | None = None) -> dict:
    return {
        "field": "date",
        "type": "temporal",
        "title": title,
        "axis": {"format": "%Y", "tickCount": "year", "labelOverlap": True, "grid": False},
    }


class Columns:
    """The long table as numpy arrays of category codes, for fast selection.

    Built once per table (or per month) and shared by every view; a ``*_rows`` function given a
    DataFrame builds it itself.
    """

    DIMS = ("run", "variable", "country", "partner", "good", "stage", "segment", "sector")

    def __init__(self, ts: pd.DataFrame):
        self.n = len(ts)
        self.value = ts["value"].to_numpy(dtype=float) if self.n else np.zeros(0)
        self.date = (
            ts["date"].to_numpy().astype("datetime64[D]")
            if self.n
            else np.zeros(0, dtype="datetime64[D]")
        )
        self.codes: dict[str, np.ndarray] = {}
        self.names: dict[str, np.ndarray] = {}
        for col in self.DIMS:
            c = ts[col] if col in ts else pd.Series([None] * self.n, dtype="category")
            cat = c if isinstance(c.dtype, pd.CategoricalDtype) else c.astype("category")
            self.codes[col] = cat.cat.codes.to_numpy()
            names = [str(x) for x in cat.cat.categories]
            self.names[col] = np.array([*names, ""], dtype=object)  # code -1 -> ""

    @classmethod
    def of(cls, ts) -> Columns:
        """``ts`` itself if already :class:`Columns`, else built from the DataFrame."""
        return ts if isinstance(ts, Columns) else cls(ts)

    def _code(self, col: str, label: str) -> int:
        hits = np.flatnonzero(self.names[col][:-1] == label)
        return int(hits[0]) if hits.size else -2  # -2 matches nothing

    def select(self, variable: str, **equal) -> np.ndarray:
        """Row indices of one variable with dimensions equal to a label (or in a list)."""
        mask = self.codes["variable"] == self._code("variable", variable)
        for col, want in equal.items():
            labels = want if isinstance(want, list | tuple | set) else [want]
            mask &= np.isin(self.codes[col], [self._code(col, w) for w in labels])
        return np.flatnonzero(mask)

    def labels(self, col: str, idx: np.ndarray) -> list[str]:
        """The labels of one dimension at rows ``idx``."""
        return self.names[col][self.codes[col][idx]].tolist()

    def dates(self, idx: np.ndarray) -> list[str]:
        """ISO dates (``YYYY-MM-DD``) at rows ``idx``."""
        return np.datetime_as_string(self.date[idx]).tolist()


def _rows(
    cols: Columns,
    idx: np.ndarray,
    fields: list[str],
    maps: dict[str, dict] | None = None,
    scale: float = 1.0,
    **const,
) -> list[dict]:
    """JSON-ready dicts for rows ``idx``: date, dimension labels (relabelled), value; no NaN.

    ``run`` is always relabelled with :data:`RUN_LABELS`; ``const`` adds fixed fields.
    """
    value = cols.value[idx] * scale
    keep = np.isfinite(value)
    idx, value = idx[keep], value[keep]
    maps = {"run": RUN_LABELS, **(maps or {})}
    columns: dict[str, list] = {}
    for f in fields:
        if f == "date":
            columns[f] = cols.dates(idx)
        elif f == "value":
            columns[f] = np.round(value, 6).tolist()
        else:
            labels = cols.labels(f, idx)
            m = maps.get(f)
            columns[f] = [m.get(x, x) for x in labels] if m else labels
    names = [*columns, *const]
    extra = tuple(const.values())
    return [
        dict(zip(names, (*r, *extra), strict=True)) for r in zip(*columns.values(), strict=True)
    ]


def _sum_by(cols: Columns, idx: np.ndarray, keys: list[str], scale: float = 1.0) -> dict:
    """Sum of values at rows ``idx`` by the labels of ``keys`` (``date`` allowed as a key)."""
    parts = [cols.dates(idx) if k == "date" else cols.labels(k, idx) for k in keys]
    out: dict[tuple, float] = {}
    for key, v in zip(zip(*parts, strict=True), (cols.value[idx] * scale).tolist(), strict=True):
        if v == v:  # skip NaN
            out[key] = out.get(key, 0.0) + v
    return out


def _base(title: str, description: str) -> dict:
    return {
        "$schema": SCHEMA,
        "title": {"text": title, "subtitle": description, "anchor": "start", "fontSize": 14},
        "data": {"name": "table"},
        "config": {
            "font": "Roboto, Helvetica, Arial, sans-serif",
            "axis": {"labelFontSize": 11, "titleFontSize": 11, "titleFontWeight": "normal"},
            "legend": {"labelFontSize": 11, "titleFontSize": 11, "labelLimit": 160},
            "header": {"labelFontSize": 12, "titleFontSize": 12},
            "view": {"stroke": "#ddd"},
        },
    }


# ---------------------------------------------------------------------------- prices


def price_rows(ts, stage: str = "oxide") -> list[dict]:
    """Prices of one stage inside and outside China, by good (US$/kg)."""
    c = Columns.of(ts)
    idx = c.select("price", stage=stage, segment=["china_domestic", "world"])
    maps = {"good": GOOD_LABELS, "segment": SEGMENT_LABELS}
    return _rows(c, idx, ["date", "run", "good", "segment", "value"], maps)


def price_spec(stage: str = "oxide") -> dict:
    """Small multiples by good: China's domestic price and the price outside China."""
    unit = "US$/kg magnet" if stage == "magnet" else "US$/kg REO"
    spec = _base(
        f"Prices: {STAGE_LABELS.get(stage, stage)} ({stage})",
        "inside and outside China; solid: this run, dashed: counterfactual",
    )
    spec.update(
        {
            "facet": {
                "column": {
                    "field": "good",
                    "type": "nominal",
                    "title": None,
                    "sort": list(GOOD_LABELS.values()),
                }
            },
            "spec": {
                "width": WIDTH,
                "height": HEIGHT,
                "mark": {"type": "line", "strokeWidth": 1.8},
                "encoding": {
                    "x": _date_x(),
                    "y": {"field": "value", "type": "quantitative", "title": unit},
                    "color": {
                        "field": "segment",
                        "type": "nominal",
                        "title": None,
                        "scale": {
                            "domain": list(SEGMENT_LABELS.values()),
                            "range": [COUNTRY_COLOURS["China"], OUTSIDE_CHINA],
                        },
                        "legend": {"orient": "bottom"},
                    },
                    "strokeDash": _run_dash(),
                    "detail": {"field": "run"},
                },
            },
            "resolve": {"scale": {"y": "independent"}},
        }
    )
    return spec


# ---------------------------------------------------------------------------- China's share


def share_rows(ts) -> list[dict]:
    """China's share of world output by stage (mining, separation, magnets), in %."""
    c = Columns.of(ts)
    idx = c.select("china_share")
    return _rows(c, idx, ["date", "run", "stage", "value"], {"stage": STAGE_LABELS}, 100.0)


def share_spec() -> dict:
    """China's share by stage, 0-100%."""
    spec = _base(
        "China's share of world output",
        "by stage; solid: this run, dashed: counterfactual",
    )
    spec.update(
        {
            "facet": {
                "column": {
                    "field": "stage",
                    "type": "nominal",
                    "title": None,
                    "sort": ["mining", "separation", "magnets"],
                }
            },
            "spec": {
                "width": WIDTH,
                "height": HEIGHT,
                "mark": {"type": "line", "strokeWidth": 2, "color": COUNTRY_COLOURS["China"]},
                "encoding": {
                    "x": _date_x(),
                    "y": {
                        "field": "value",
                        "type": "quantitative",
                        "title": "share of world output (%)",
                        "scale": {"domain": [0, 100]},
                    },
                    "strokeDash": _run_dash(),
                },
            },
        }
    )
    return spec


# ---------------------------------------------------------------------------- dependence


def dependence_rows(ts) -> list[dict]:
    """Each importer's share of its concentrate and oxide imports that comes from China, in %."""
    c = Columns.of(ts)
    idx = c.select("import_share_from_china")
    return _rows(c, idx, ["date", "run", "country", "value"], scale=100.0)


def dependence_spec() -> dict:
    """One line per importer, in its country colour."""
    spec = _base(
        "Importers' dependence on China",
        "share of each country's concentrate + oxide imports (t REO) from China; 6-month average",
    )
    spec.update(
        {
            "width": 2 * WIDTH,
            "height": HEIGHT + 40,
            "transform": [
                {
                    "window": [{"op": "mean", "field": "value", "as": "smoothed"}],
                    "groupby": ["run", "country"],
                    "sort": [{"field": "date"}],
                    "frame": [-5, 0],
                }
            ],
            "mark": {"type": "line", "strokeWidth": 1.8},
            "encoding": {
                "x": _date_x(),
                "y": {
                    "field": "smoothed",
                    "type": "quantitative",
                    "title": "imports from China (%)",
                    "scale": {"domain": [0, 100]},
                },
                "color": {
                    "field": "country",
                    "type": "nominal",
                    "title": None,
                    "scale": country_scale(),
                    "legend": {"orient": "right", "values": [c for c in COUNTRIES if c != "China"]},
                },
                "strokeDash": _run_dash(),
                "detail": {"field": "run"},
            },
        }
    )
    return spec


# ---------------------------------------------------------------------------- stocks


def stock_rows(ts, good: str = "ndpr") -> list[dict]:
    """Manufacturers' inventories and state stockpiles of one good, in months of use.

    Inventories are the recorded ``inventory_months``. Stockpiles are ``stockpile_t`` divided
    by the same country's ``consumption_t`` of that good in the same month (months of current
    use); countries without a stockpile are left out.
    """
    c = Columns.of(ts)
    keys = ["date", "run", "country"]
    out = _rows(c, c.select("inventory_months", good=good), [*keys, "value"], kind=INVENTORIES)
    pile = _sum_by(c, c.select("stockpile_t", good=good), keys)
    if any(v > 0 for v in pile.values()):
        use = _sum_by(c, c.select("consumption_t", good=good), keys)
        for (date, run, country), t in pile.items():
            u = use.get((date, run, country), 0.0)
            if t > 0 and u > 0:
                out.append(
                    {
                        "date": date,
                        "run": RUN_LABELS.get(run, run),
                        "country": country,
                        "value": round(t / u, 6),
                        "kind": STOCKPILES,
                    }
                )
    return out


def stock_spec(good: str = "ndpr") -> dict:
    """Inventories and stockpiles side by side, one line per country."""
    spec = _base(
        f"Stocks of {GOOD_LABELS.get(good, good)} in months of use",
        "solid: this run, dashed: counterfactual",
    )
    spec.update(
        {
            "facet": {
                "column": {
                    "field": "kind",
                    "type": "nominal",
                    "title": None,
                    "sort": ["manufacturers' inventories", "state stockpiles"],
                }
            },
            "spec": {
                "width": WIDTH,
                "height": HEIGHT,
                "mark": {"type": "line", "strokeWidth": 1.6},
                "encoding": {
                    "x": _date_x(),
                    "y": {"field": "value", "type": "quantitative", "title": "months of use"},
                    "color": {
                        "field": "country",
                        "type": "nominal",
                        "title": None,
                        "scale": country_scale(),
                        "legend": {"orient": "right"},
                    },
                    "strokeDash": _run_dash(),
                    "detail": {"field": "run"},
                },
            },
            "resolve": {"scale": {"y": "independent"}},
        }
    )
    return spec


# ---------------------------------------------------------------------------- capacity


def capacity_rows(ts, stage: str = "oxide") -> list[dict]:
    """Capacity online and under construction by country for one stage (kt/yr)."""
    c = Columns.of(ts)
    out = []
    for var, kind in (
        ("capacity_t_per_year", "online"),
        ("construction_t_per_year", "under construction"),
    ):
        idx = c.select(var, stage=stage)
        out += _rows(c, idx, ["date", "run", "country", "value"], scale=1e-3, kind=kind)
    return out


def capacity_spec(stage: str = "oxide") -> dict:
    """Online and under construction side by side: diversification shows before it produces."""
    unit = "kt magnet/yr" if stage == "magnet" else "kt REO/yr"
    spec = _base(
        f"Capacity: {STAGE_LABELS.get(stage, stage)}",
        "online and under construction, by country; solid: this run, dashed: counterfactual",
    )
    spec.update(
        {
            "facet": {
                "column": {
                    "field": "kind",
                    "type": "nominal",
                    "title": None,
                    "sort": ["online", "under construction"],
                }
            },
            "spec": {
                "width": WIDTH,
                "height": HEIGHT,
                "mark": {"type": "line", "strokeWidth": 1.6},
                "encoding": {
                    "x": _date_x(),
                    "y": {"field": "value", "type": "quantitative", "title": unit},
                    "color": {
                        "field": "country",
                        "type": "nominal",
                        "title": None,
                        "scale": country_scale(),
                        "legend": {"orient": "right"},
                    },
                    "strokeDash": _run_dash(),
                    "detail": {"field": "run"},
                },
            },
            "resolve": {"scale": {"y": "independent"}},
        }
    )
    return spec


# ---------------------------------------------------------------------------- lost output


def lost_rows(ts) -> list[dict]:
    """Lost output (US$ bn per month) by country, and by sector (all countries)."""
    c = Columns.of(ts)
    idx = c.select("lost_output_usd")
    out = [
        {
            "date": d,
            "run": RUN_LABELS.get(r, r),
            "kind": "country",
            "country": k,
            "sector": "",
            "value": round(v, 6),
        }
        for (d, r, k), v in _sum_by(c, idx, ["date", "run", "country"], 1e-9).items()
    ]
    out += [
        {
            "date": d,
            "run": RUN_LABELS.get(r, r),
            "kind": "sector",
            "country": "",
            "sector": SECTOR_LABELS.get(k, k),
            "value": round(v, 6),
        }
        for (d, r, k), v in _sum_by(c, idx, ["date", "run", "sector"], 1e-9).items()
        if v > 0
    ]
    return out


def lost_spec() -> dict:
    """Cumulative lost output by country (lines) and by sector (bars: run, counterfactual)."""
    spec = _base(
        "Lost output from shortages (cumulative)",
        "output manufacturers could not make for want of rare earths",
    )
    lines = {
        "transform": [
            {"filter": "datum.kind === 'country'"},
            {
                "window": [{"op": "sum", "field": "value", "as": "cumulative"}],
                "groupby": ["run", "country"],
                "sort": [{"field": "date"}],
                "frame": [None, 0],
            },
        ],
        "width": WIDTH + 40,
        "height": HEIGHT,
        "mark": {"type": "line", "strokeWidth": 1.6},
        "encoding": {
            "x": _date_x(),
            "y": {"field": "cumulative", "type": "quantitative", "title": "US$ bn (cumulative)"},
            "color": {
                "field": "country",
                "type": "nominal",
                "title": None,
                "scale": country_scale(),
                "legend": {"orient": "left"},
            },
            "strokeDash": _run_dash(),
            "detail": {"field": "run"},
        },
    }
    bars = {
        "transform": [{"filter": "datum.kind === 'sector'"}],
        "width": WIDTH - 40,
        "height": HEIGHT,
        "mark": {"type": "bar"},
        "encoding": {
            "y": {"field": "sector", "type": "nominal", "title": None, "sort": "-x"},
            "yOffset": {"field": "run", "sort": [RUN, COUNTERFACTUAL]},
            "x": {
                "aggregate": "sum",
                "field": "value",
                "type": "quantitative",
                "title": "US$ bn, all countries",
            },
            "color": {
                "field": "run",
                "type": "nominal",
                "title": None,
                "scale": {"domain": [RUN, COUNTERFACTUAL], "range": ["#444444", "#BBBBBB"]},
                "legend": {"orient": "bottom"},
            },
        },
    }
    spec.update({"hconcat": [lines, bars], "resolve": {"scale": {"color": "independent"}}})
    return spec


# ---------------------------------------------------------------------------- trade flows


def flow_rows(ts, date=None, min_t: float = 10.0) -> list[dict]:
    """Trade between countries in one month (default: the last), summed over goods and stages.

    Each row is one exporter -> importer route of one run, in t/month (concentrate and oxide in
    t REO, magnets in t of magnet), marked ``restricted`` when the exporter restricts that route
    (the recorded ``restriction`` share is above 0). Restricted routes with no trade left are
    kept (with 0 t) so that an embargo stays visible.
    """
    c = Columns.of(ts)
    if c.n == 0:
        return []
    day = c.date.max() if date is None else np.datetime64(pd.Timestamp(date), "D")
    in_month = np.flatnonzero(c.date == day)
    keys = ["run", "country", "partner"]
    trade = _sum_by(c, np.intersect1d(c.select("trade_t"), in_month), keys)
    blocked = _sum_by(c, np.intersect1d(c.select("restriction"), in_month), keys)
    iso = str(day)
    out = []
    for key in sorted(set(trade) | {k for k, b in blocked.items() if b > 0}):
        t = trade.get(key, 0.0)
        b = blocked.get(key, 0.0)
        if t < min_t and b <= 0:
            continue
        run, exporter, importer = key
        out.append(
            {
                "date": iso,
                "run": RUN_LABELS.get(run, run),
                "exporter": exporter,
                "importer": importer,
                "route": "restricted" if b > 0 else "open",
                "blocked": round(100 * min(b, 1.0)),
                "value": round(t, 3),
                "x0": 0,
                "x1": 1,
            }
        )
    return out


def flow_spec() -> dict:
    """A two-column flow diagram per run: exporters left, importers right, width = t/month."""
    spec = _base(
        "Trade flows this month",
        "exporters (left) to importers (right); width: t/month; dashed red: restricted route",
    )
    y_exp = {
        "field": "exporter",
        "type": "nominal",
        "scale": {"domain": list(COUNTRIES)},
        "title": None,
        "axis": {"labelFontSize": 11, "ticks": False, "domain": False},
    }
    spec.update(
        {
            "facet": {
                "column": {
                    "field": "run",
                    "type": "nominal",
                    "title": None,
                    "sort": [RUN, COUNTERFACTUAL],
                }
            },
            "spec": {
                "width": WIDTH,
                "height": HEIGHT + 60,
                "layer": [
                    {
                        "mark": {"type": "rule", "strokeCap": "round", "opacity": 0.75},
                        "encoding": {
                            "x": {
                                "field": "x0",
                                "type": "quantitative",
                                "scale": {"domain": [0, 1]},
                                "axis": {
                                    "values": [0, 1],
                                    "labelExpr": "datum.value < 0.5 ? 'exporter' : 'importer'",
                                    "grid": False,
                                    "title": None,
                                },
                            },
                            "x2": {"field": "x1"},
                            "y": y_exp,
                            "y2": {"field": "importer"},
                            "strokeWidth": {
                                "field": "value",
                                "type": "quantitative",
                                "title": "t/month",
                                "scale": {"range": [0.8, 14], "zero": True},
                                "legend": {
                                    "orient": "bottom",
                                    "symbolType": "stroke",
                                    "symbolStrokeColor": "#555",
                                },
                            },
                            "color": {
                                "condition": {
                                    "test": "datum.route === 'restricted'",
                                    "value": "#C00000",
                                },
                                "field": "exporter",
                                "type": "nominal",
                                "scale": country_scale(),
                                "legend": None,
                            },
                            "strokeDash": {
                                "field": "route",
                                "type": "nominal",
                                "title": None,
                                "scale": {
                                    "domain": ["open", "restricted"],
                                    "range": [[1, 0], [4, 3]],
                                },
                                "legend": {"orient": "bottom", "symbolStrokeColor": "#555"},
                            },
                            "tooltip": [
                                {"field": "exporter"},
                                {"field": "importer"},
                                {"field": "value", "title": "t/month", "format": ",.0f"},
                                {"field": "blocked", "title": "% blocked"},
                            ],
                        },
                    },
                    {  # restricted routes on top, always visible
                        "transform": [{"filter": "datum.route === 'restricted'"}],
                        "mark": {
                            "type": "rule",
                            "color": "#C00000",
                            "strokeWidth": 2.5,
                            "strokeDash": [5, 3],
                            "opacity": 1,
                        },
                        "encoding": {
                            "x": {"field": "x0", "type": "quantitative"},
                            "x2": {"field": "x1"},
                            "y": y_exp,
                            "y2": {"field": "importer"},
                            "tooltip": [
                                {"field": "exporter"},
                                {"field": "importer"},
                                {"field": "value", "title": "t/month", "format": ",.0f"},
                                {"field": "blocked", "title": "% blocked"},
                            ],
                        },
                    },
                    {
                        "transform": [{"aggregate": [], "groupby": ["exporter"]}],
                        "mark": {"type": "circle", "size": 60, "opacity": 1},
                        "encoding": {
                            "x": {"datum": 0, "type": "quantitative"},
                            "y": y_exp,
                            "color": {
                                "field": "exporter",
                                "type": "nominal",
                                "scale": country_scale(),
                                "legend": None,
                            },
                        },
                    },
                    {
                        "transform": [{"aggregate": [], "groupby": ["importer"]}],
                        "mark": {"type": "circle", "size": 60, "opacity": 1},
                        "encoding": {
                            "x": {"datum": 1, "type": "quantitative"},
                            "y": {"field": "importer", "type": "nominal"},
                            "color": {
                                "field": "importer",
                                "type": "nominal",
                                "scale": country_scale(),
                                "legend": None,
                            },
                        },
                    },
                    {
                        "transform": [{"aggregate": [], "groupby": ["importer"]}],
                        "mark": {"type": "text", "align": "left", "dx": 8, "fontSize": 11},
                        "encoding": {
                            "x": {"datum": 1, "type": "quantitative"},
                            "y": {"field": "importer", "type": "nominal"},
                            "text": {"field": "importer"},
                        },
                    },
                ],
            },
        }
    )
    return spec


# ---------------------------------------------------------------------------- all views

VIEWS: dict[str, tuple[Callable[..., list[dict]], Callable[..., dict]]] = {
    "prices": (price_rows, price_spec),
    "share": (share_rows, share_spec),
    "dependence": (dependence_rows, dependence_spec),
    "stocks": (stock_rows, stock_spec),
    "capacity": (capacity_rows, capacity_spec),
    "lost": (lost_rows, lost_spec),
    "flows": (flow_rows, flow_spec),
}
"""Each view's name -> (rows function, spec function)."""

VIEW_OPTIONS = {"prices": "stage", "stocks": "good", "capacity": "stage"}
"""The one option a view takes (passed to both its functions), if any."""


def chart(view: str, ts: pd.DataFrame, option: str | None = None) -> dict:
    """A self-contained Vega-Lite spec of one view of a time series (data inline).

    Args:
        view: a key of :data:`VIEWS` (``prices``, ``share``, ``dependence``, ``stocks``,
            ``capacity``, ``lost``, ``flows``).
        ts: the long table (both runs, as in ``timeseries.parquet``).
        option: the view's option (see :data:`VIEW_OPTIONS`), e.g. a stage or a good.

    Returns:
        A Vega-Lite 5 spec (a dict) with the data under ``datasets.table``.
    """
    rows_fn, spec_fn = VIEWS[view]
    kw = {VIEW_OPTIONS[view]: option} if option and view in VIEW_OPTIONS else {}
    spec = spec_fn(**kw)
    spec["datasets"] = {"table": rows_fn(ts, **kw)}
    return spec


def fmt_usd(x: float) -> str:
    """US$ with a scale word: 1.2 bn, 340 m, 12 k."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    a = abs(x)
    sign = "-" if x < 0 else ""
    for div, word in ((1e12, "tn"), (1e9, "bn"), (1e6, "m"), (1e3, "k")):
        if a >= div:
            return f"{sign}US${a / div:,.1f} {word}"
    return f"{sign}US${a:,.0f}"


__all__ = [
    "COUNTRY_COLOURS",
    "VIEWS",
    "VIEW_OPTIONS",
    "capacity_rows",
    "capacity_spec",
    "chart",
    "country_scale",
    "dependence_rows",
    "dependence_spec",
    "flow_rows",
    "flow_spec",
    "fmt_usd",
    "lost_rows",
    "lost_spec",
    "price_rows",
    "price_spec",
    "share_rows",
    "share_spec",
    "stock_rows",
    "stock_spec",
]
