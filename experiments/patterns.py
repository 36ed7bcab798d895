"""Pattern-oriented check of ``history-2010`` against the observed record (data/README.md).

Each pattern is computed from ``timeseries.parquet`` variables only (no special code paths in the
model), so the same check works on any saved run of the historical scenario. Observed figures
come from ``abm/data/ree_history.csv`` (their rows are named in ``PATTERNS``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from abm.outcomes import series

KEEP = (
    "price",
    "production_t",
    "china_share",
    "import_share_from_china",
    "trade_t",
    "imports_t",
    "capacity_t_per_year",
    "budget_usd",
    "export_quota_t",
)


def history_data() -> pd.DataFrame:
    """The sourced calibration figures shipped with the package (with their source column)."""
    with resources.files("abm").joinpath("data/ree_history.csv").open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


def _year_mean(s: pd.Series, year: int | tuple[int, int], months=None) -> float:
    idx = pd.DatetimeIndex(s.index)
    lo, hi = (year, year) if isinstance(year, int) else year
    m = (idx.year >= lo) & (idx.year <= hi)
    if months is not None:
        m &= idx.month.isin(list(months))
    v = s[m]
    return float(v.mean()) if len(v) else math.nan


def _at(s: pd.Series, ym: str) -> float:
    ts = pd.Timestamp(ym + "-01")
    return float(s.get(ts, math.nan))


# ----------------------------------------------------------------------------- statistics


def stat_trigger_drop(df):
    """Japan's imports from China, Nov 2010 / Sep 2010 (observed 634/2,246 = 0.28)."""
    s = series(df, "trade_t", country="China", partner="Japan", stage=["concentrate", "oxide"])
    return _at(s, "2010-11") / max(_at(s, "2010-09"), 1e-9)


def stat_trigger_rebound(df):
    """Japan's imports from China, Dec 2010 / Nov 2010 (observed 4,081/634 = 6.4)."""
    s = series(df, "trade_t", country="China", partner="Japan", stage=["concentrate", "oxide"])
    return _at(s, "2010-12") / max(_at(s, "2010-11"), 1e-9)


def _peak(df, good):
    p = series(df, "price", segment="world", good=good, stage="oxide")
    base = _year_mean(p, 2009)
    peak = p[(p.index >= pd.Timestamp("2010-01-01")) & (p.index <= pd.Timestamp("2012-06-01"))]
    return float(peak.max() / base) if len(peak) else math.nan


def stat_peak_heavy(df):
    """Peak world Dy/Tb oxide price 2010-mid 2012 over its 2009 mean (observed Dy: 26x)."""
    return _peak(df, "heavy")


def stat_peak_light(df):
    """Peak world light oxide price over its 2009 mean (observed Ce ~26x, La 13-15x)."""
    return _peak(df, "light")


def stat_peak_basket(df):
    """Peak of a 2009-value-weighted oxide basket over its 2009 mean (observed ~12x)."""
    goods = ("light", "ndpr", "heavy")
    prices = {g: series(df, "price", segment="world", good=g, stage="oxide") for g in goods}
    prod = {g: _year_mean(series(df, "production_t", good=g, stage="oxide"), 2009) for g in goods}
    w = {g: prod[g] * _year_mean(prices[g], 2009) for g in goods}
    tot = sum(w.values())
    rel = sum((w[g] / tot) * prices[g] / _year_mean(prices[g], 2009) for g in goods)
    peak = rel[
        (rel.index >= pd.Timestamp("2010-01-01")) & (rel.index <= pd.Timestamp("2012-06-01"))
    ]
    return float(peak.max())


def stat_two_tier(df):
    """China's domestic NdPr and Dy/Tb oxide price / world price, mean 2010-07 to 2011-12."""
    ratios = []
    for good in ("ndpr", "heavy"):
        cn = series(df, "price", segment="china_domestic", good=good, stage="oxide")
        w = series(df, "price", segment="world", good=good, stage="oxide")
        r = (cn / w)[
            (cn.index >= pd.Timestamp("2010-07-01")) & (cn.index <= pd.Timestamp("2011-12-01"))
        ]
        ratios.append(float(r.mean()))
    return float(np.mean(ratios))


def _china_mining_share(df, year):
    return 100 * _year_mean(series(df, "china_share", stage="concentrate"), year)


def _japan_dependence(df, year, months=None):
    return 100 * _year_mean(series(df, "import_share_from_china", country="Japan"), year, months)


def stat_budget_response(df):
    """Japan's budget change in 2010-10 (US$; the scripted 100 bn yen supplement)."""
    b = series(df, "budget_usd", country="Japan")
    return _at(b, "2010-10") - _at(b, "2010-09")


def _first_online(df, country, stage):
    cap = series(df, "capacity_t_per_year", country=country, stage=stage)
    base = cap.iloc[0] if len(cap) else 0.0
    on = cap[cap > base + 1.0]
    if on.empty:
        return math.nan
    first = pd.Timestamp(on.index[0])
    return first.year + (first.month - 1) / 12.0


def stat_mountain_pass(df):
    """Year (decimal) US mining capacity first comes online (observed restart: 2012.6)."""
    return _first_online(df, "United States", "concentrate")


def stat_world_output(df, year):
    """World mine output in a year, t REO (sum of concentrate production)."""
    p = series(df, "production_t", stage="concentrate")
    idx = pd.DatetimeIndex(p.index)
    return float(p[idx.year == year].sum())


def stat_japan_imports(df, year: int, months=None) -> float:
    """Japan's imports of concentrate and oxide from everyone in a year (or some of its months), t.

    Customs count gross tonnes and the model counts t REO, so this is a check of size, not of
    the tonne (see docs/CALIBRATION.md).
    """
    s = series(df, "imports_t", country="Japan", stage=["concentrate", "oxide"])
    idx = pd.DatetimeIndex(s.index)
    m = idx.year == year
    if months is not None:
        m &= idx.month.isin(list(months))
    return float(s[m].sum())


@dataclass(frozen=True)
class Check:
    """One statistic with its observed value and the tolerance band that passes."""

    name: str
    observed: float
    lo: float
    hi: float
    stat: Callable[[pd.DataFrame], float]
    source: str


@dataclass(frozen=True)
class Pattern:
    """A pattern from data/README.md: it passes when every one of its checks passes."""

    number: int
    name: str
    checks: tuple[Check, ...]


PATTERNS: tuple[Pattern, ...] = (
    Pattern(
        1,
        "Trigger: the halt to Japan and the December rebound",
        (
            Check(
                "imports from China Nov/Sep 2010",
                634 / 2246,
                0.0,
                0.5,
                stat_trigger_drop,
                "japan_imports_from_china_monthly 2010-09, 2010-11",
            ),
            Check(
                "imports from China Dec/Nov 2010",
                4081 / 634,
                1.5,
                20.0,
                stat_trigger_rebound,
                "japan_imports_from_china_monthly 2010-11, 2010-12",
            ),
        ),
    ),
    Pattern(
        2,
        "Price spike 2009 to the 2011 peak",
        (
            Check(
                "Dy/Tb oxide peak multiple",
                2377 / 91,
                10.0,
                60.0,
                stat_peak_heavy,
                "price_FOB_Dy_oxide 2009-01, price_FOB_Dy_oxide_peak 2011",
            ),
            Check(
                "light oxide peak multiple",
                20.0,
                6.0,
                50.0,
                stat_peak_light,
                "price_FOB_Ce_oxide / price_FOB_La_oxide (Ce ~26x, La 13-15x)",
            ),
            Check(
                "oxide basket peak multiple",
                12.0,
                5.0,
                30.0,
                stat_peak_basket,
                "price_index_REO_basket_change 2009Q4 to 2011 peak (+1,100%)",
            ),
        ),
    ),
    Pattern(
        3,
        "Two-tier prices during the squeeze",
        (
            Check(
                "China domestic / world price, 2010H2-2011",
                0.55,
                0.0,
                0.8,
                stat_two_tier,
                "price_domestic_Nd_oxide 2011-09 vs price_FOB_Nd_oxide_peak (about 0.55)",
            ),
        ),
    ),
    Pattern(
        4,
        "China's share of world mining falls, then partly recovers",
        tuple(
            Check(
                f"China's mining share {y} (%)",
                obs,
                obs - tol,
                obs + tol,
                (lambda df, y=y: _china_mining_share(df, y)),
                f"china_share_mine_production {y}",
            )
            for y, obs, tol in (
                (2010, 97.6, 5),
                (2013, 92.1, 7),
                (2014, 85.4, 8),
                (2021, 60.0, 12),
                (2024, 69.2, 10),
            )
        ),
    ),
    Pattern(
        5,
        "Japan's dependence on China falls, then creeps back",
        (
            Check(
                "Japan's import share from China 2010 (%)",
                82,
                70,
                95,
                lambda df: _japan_dependence(df, 2010),
                "japan_china_share_imports 2010",
            ),
            Check(
                "... 2012 H1 (%)",
                49.3,
                34,
                64,
                lambda df: _japan_dependence(df, 2012, range(1, 7)),
                "japan_china_share_imports 2012H1",
            ),
            Check(
                "... 2018-2020 (%)",
                58,
                43,
                73,
                lambda df: _japan_dependence(df, (2018, 2020)),
                "japan_china_share_imports ~2018-2020",
            ),
            Check(
                "... 2023-2024 (%)",
                75,
                63,
                87,
                lambda df: _japan_dependence(df, (2023, 2024)),
                "japan_china_share_imports 2023H1, 2024H1, 2024",
            ),
        ),
    ),
    Pattern(
        6,
        "Policy scale: Japan answers within weeks",
        (
            Check(
                "Japan's budget added in 2010-10 (US$ bn)",
                1.2,
                1.0,
                1.4,
                lambda df: stat_budget_response(df) / 1e9,
                "japan_supplementary_budget_REE 2010-10",
            ),
        ),
    ),
    Pattern(
        7,
        "Lead times: new supply takes years",
        (
            Check(
                "Mountain Pass restart (year)",
                2012.6,
                2011.6,
                2013.6,
                stat_mountain_pass,
                "data/README.md pattern 7: mining restarted August 2012",
            ),
        ),
    ),
)

PLAUSIBILITY: tuple[Check, ...] = (
    Check(
        "world mine output 2010 (t REO)",
        133600,
        133600 * 0.8,
        133600 * 1.2,
        lambda df: stat_world_output(df, 2010),
        "mine_production World 2010",
    ),
    Check(
        "world mine output 2024 (t REO)",
        390000,
        390000 * 0.75,
        390000 * 1.25,
        lambda df: stat_world_output(df, 2024),
        "mine_production_MCS2025 World 2024",
    ),
    Check(
        "Japan's total imports 2011 (t)",
        15400,
        15400 * 0.7,
        15400 * 1.3,
        lambda df: stat_japan_imports(df, 2011),
        "japan_imports_total Japan 2011 (Nikkei)",
    ),
    Check(
        "Japan's total imports 2012 H1 (t)",
        6099,
        6099 * 0.7,
        6099 * 1.3,
        lambda df: stat_japan_imports(df, 2012, range(1, 7)),
        "japan_imports_total Japan 2012H1 (DERIVED from Nikkei)",
    ),
)


def simulate_history(
    seed: int, scenario: str = "history-2010", overrides: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Run the historical scenario once (no counterfactual) and keep the variables used here."""
    from abm.scenario import load_scenario
    from experiments.runner import simulate

    scn = load_scenario(scenario, list(overrides), seed=seed)
    df = simulate(scn, seed).timeseries
    return df[df["variable"].isin(KEEP)].reset_index(drop=True)


def evaluate(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per check: observed, model median and 10-90% band over runs, tolerance, pass."""
    rows = []
    for pat in PATTERNS:
        for chk in pat.checks:
            vals = np.array([chk.stat(df) for df in frames], dtype=float)
            med = float(np.nanmedian(vals)) if np.isfinite(vals).any() else math.nan
            ok = bool(np.isfinite(med) and chk.lo <= med <= chk.hi)
            rows.append(
                {
                    "pattern": pat.number,
                    "pattern_name": pat.name,
                    "check": chk.name,
                    "observed": chk.observed,
                    "model_median": med,
                    "model_p10": float(np.nanpercentile(vals, 10))
                    if np.isfinite(vals).any()
                    else math.nan,
                    "model_p90": float(np.nanpercentile(vals, 90))
                    if np.isfinite(vals).any()
                    else math.nan,
                    "tolerance_lo": chk.lo,
                    "tolerance_hi": chk.hi,
                    "pass": ok,
                    "source": chk.source,
                }
            )
    for chk in PLAUSIBILITY:
        vals = np.array([chk.stat(df) for df in frames], dtype=float)
        med = float(np.nanmedian(vals))
        rows.append(
            {
                "pattern": 0,
                "pattern_name": "Plausibility (beyond the seven)",
                "check": chk.name,
                "observed": chk.observed,
                "model_median": med,
                "model_p10": float(np.nanpercentile(vals, 10)),
                "model_p90": float(np.nanpercentile(vals, 90)),
                "tolerance_lo": chk.lo,
                "tolerance_hi": chk.hi,
                "pass": bool(chk.lo <= med <= chk.hi),
                "source": chk.source,
            }
        )
    return pd.DataFrame(rows)


def run_patterns(
    seeds: int = 20,
    workers: int | None = None,
    master_seed: int = 2010,
    scenario: str = "history-2010",
) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """Run the scenario over ``seeds`` seeds (spawned from one SeedSequence) in parallel."""
    ss = np.random.SeedSequence(master_seed)
    seed_list = [int(s.generate_state(1)[0]) for s in ss.spawn(seeds)]
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or seeds == 1:
        frames = [simulate_history(s, scenario) for s in seed_list]
    else:
        with ProcessPoolExecutor(max_workers=min(workers, seeds)) as pool:
            frames = list(pool.map(simulate_history, seed_list, [scenario] * seeds))
    for df, s in zip(frames, seed_list, strict=True):
        df.attrs["seed"] = s
    return evaluate(frames), frames


# ----------------------------------------------------------------------------- figures


def pattern_figure(res: pd.DataFrame, path: str | Path) -> Path:
    """One row per check: observed value, model median with its 10-90% band, tolerance band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(res)
    fig, ax = plt.subplots(figsize=(10, 0.42 * n + 1.2), constrained_layout=True)
    rows = res.to_dict("records")
    for k, row in enumerate(rows):
        y = n - 1 - k
        scale = max(abs(row["tolerance_hi"]), abs(row["observed"]), 1e-9)
        lo, hi = row["tolerance_lo"] / scale, row["tolerance_hi"] / scale
        ax.plot([lo, hi], [y, y], color="#BBBBBB", lw=8, solid_capstyle="butt")
        ax.plot([row["model_p10"] / scale, row["model_p90"] / scale], [y, y], color="#0072B2", lw=2)
        ax.plot(row["model_median"] / scale, y, "o", color="#0072B2" if row["pass"] else "#D55E00")
        ax.plot(row["observed"] / scale, y, "k|", ms=14, mew=2)
    ax.set_yticks(range(n))
    ax.set_yticklabels([f"{r['pattern']}. {r['check']}" for r in rows][::-1], fontsize=8)
    ax.set_xlabel(
        "value / scale of its tolerance (grey: tolerance, |: observed, "
        "dot: model median, blue line: 10-90%)"
    )
    ax.set_title("history-2010 against the record: blue dot passes, orange fails")
    ax.grid(alpha=0.3, axis="x")
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def overlay_figure(frames: list[pd.DataFrame], path: str | Path) -> Path:
    """Headline series 2009-2024, model (median and band over seeds) against the record."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    obs = history_data()
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), constrained_layout=True)

    def band(ax, series_list, colour, label, scale=1.0):
        mat = pd.concat(series_list, axis=1) * scale
        med = mat.median(axis=1)
        ax.fill_between(
            mat.index, mat.quantile(0.1, axis=1), mat.quantile(0.9, axis=1), color=colour, alpha=0.2
        )
        ax.plot(med.index, med.values, color=colour, label=label)

    def yearly(s):
        idx = pd.DatetimeIndex(s.index)
        return s.groupby(idx.year).sum()

    ax = axes[0, 0]
    world = [yearly(series(df, "production_t", stage="concentrate")) for df in frames]
    mat = pd.concat(world, axis=1)
    ax.fill_between(
        mat.index,
        mat.quantile(0.1, axis=1) / 1e3,
        mat.quantile(0.9, axis=1) / 1e3,
        color="#0072B2",
        alpha=0.2,
    )
    ax.plot(mat.index, mat.median(axis=1) / 1e3, color="#0072B2", label="model: world")
    o = obs[obs["series"].str.startswith("mine_production") & (obs["country"] == "World")]
    o = o[o["year"].astype(str).str.fullmatch(r"\d{4}")]
    ax.plot(o["year"].astype(int), o["value"].astype(float) / 1e3, "ko", label="observed: world")
    ax.set_title("World mine output")
    ax.set_ylabel("thousand t REO per year")
    ax.set_xlabel("year")
    ax.legend(fontsize=8)

    ax = axes[0, 1]
    band(
        ax,
        [
            series(df, "china_share", stage="concentrate").rolling(12, min_periods=1).mean()
            for df in frames
        ],
        "#D55E00",
        "model (12-month mean)",
        100,
    )
    o = obs[obs["series"] == "china_share_mine_production"]
    ax.plot(
        pd.to_datetime(o["year"].astype(str) + "-07-01"),
        o["value"].astype(float),
        "ko",
        label="observed",
    )
    ax.set_title("China's share of world mining")
    ax.set_ylabel("% of world output")
    ax.set_xlabel("date")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)

    ax = axes[1, 0]
    band(
        ax,
        [
            series(df, "import_share_from_china", country="Japan").rolling(6, min_periods=1).mean()
            for df in frames
        ],
        "#0072B2",
        "model (6-month mean)",
        100,
    )
    o = obs[obs["series"] == "japan_china_share_imports"].copy()
    yr = o["year"].astype(str).str.extract(r"(\d{4})")[0].astype(int)
    ax.plot(
        pd.to_datetime(yr.astype(str) + "-07-01"),
        o["value"].astype(str).str.extract(r"([\d.]+)")[0].astype(float),
        "ko",
        label="observed",
    )
    ax.set_title("Japan's dependence on China")
    ax.set_ylabel("% of Japan's rare-earth imports from China")
    ax.set_xlabel("date")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)

    ax = axes[1, 1]
    colours = {"light": "#E69F00", "ndpr": "#0072B2", "heavy": "#CC79A7"}
    for good, colour in colours.items():
        band(
            ax,
            [series(df, "price", segment="world", good=good, stage="oxide") for df in frames],
            colour,
            f"model: {good} oxide",
        )
    pts = {
        "price_FOB_Dy_oxide": "heavy",
        "price_FOB_Dy_oxide_peak": "heavy",
        "price_FOB_Nd_oxide": "ndpr",
        "price_FOB_Nd_oxide_peak": "ndpr",
        "price_FOB_La_oxide": "light",
        "price_FOB_Ce_oxide": "light",
        "price_avg_Nd_oxide": "ndpr",
        "price_avg_Dy_oxide": "heavy",
    }
    for name, good in pts.items():
        o = obs[obs["series"] == name]
        for _, r in o.iterrows():
            y = str(r["year"])[:7]
            date = pd.Timestamp(y + "-07-01" if len(y) == 4 else y + "-01")
            v = str(r["value"]).split("-")
            val = np.mean([float(x) for x in v if x])
            ax.plot(date, val, "o", color=colours[good], mec="k")
    ax.set_yscale("log")
    ax.set_title("World oxide prices (dots: observed FOB/averages)")
    ax.set_ylabel("US$/kg (log scale)")
    ax.set_xlabel("date")
    ax.legend(fontsize=8)
    for a in axes.flat:
        a.grid(alpha=0.3)
    fig.suptitle(f"history-2010 over {len(frames)} seeds against the record (band: 10-90%)")
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
