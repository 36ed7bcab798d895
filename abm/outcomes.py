"""Summary outcomes and the leverage verdict, computed from the time series only.

Every outcome is a function of ``timeseries.parquet`` rows, so the same summary can be rebuilt
from any saved run (and a sweep can compute it without the model). The verdict formula is stated
in docs/ODD.md, "Outcomes and verdict".
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from abm.scenario import VerdictParams

VERDICTS = ("succeeded", "backfired", "mixed", "no_effect")


def series(df: pd.DataFrame, variable: str, **dims) -> pd.Series:
    """Sum of a variable over rows matching the dimension filters, by date (sorted)."""
    m = df["variable"] == variable
    for key, value in dims.items():
        if isinstance(value, list | tuple | set):
            m &= df[key].isin(list(value))
        elif value is None:
            m &= df[key].isna()
        else:
            m &= df[key] == value
    sub = df.loc[m, ["date", "value"]]
    return sub.groupby("date", observed=True)["value"].sum(min_count=1).sort_index()


def _tail_mean(s: pd.Series, n: int = 12) -> float:
    s = s.dropna()
    return float(s.iloc[-n:].mean()) if len(s) else math.nan


def _first_below(s: pd.Series, level: float) -> float:
    roll = s.rolling(12, min_periods=3).mean()
    below = np.flatnonzero(roll.to_numpy() < level)
    return float(below[0]) if below.size else math.nan


OUTCOME_LABELS: dict[str, str] = {
    "coercer_share_mining_end": "China's share of world mining (last 12 months)",
    "coercer_share_separation_end": "China's share of separation",
    "coercer_share_magnet_end": "China's share of magnet output",
    "coercer_revenue_discounted_usd": "China's rare-earth revenue, discounted (US$)",
    "target_dependence_end": "target's import share from China (last 12 months)",
    "target_dependence_mean": "target's import share from China (mean)",
    "ex_coercer_capacity_t_per_year": "capacity outside China, mining + separation (t/yr)",
    "target_months_to_below_50pct": "months until target's import share from China < 50%",
    "ex_coercer_mining_capacity_t_per_year": "mining capacity outside China (t/yr)",
    "ex_coercer_separation_capacity_t_per_year": "separation capacity outside China (t/yr)",
    "target_stockpile_t_end": "target's stockpile at the end (t)",
    "world_recycled_t_per_year_end": "world recycling (last 12 months, t/yr)",
    "target_intensity_ndpr_end": "target's NdPr use per unit of output at the end",
    "target_lost_output_usd": "target's lost output (US$)",
    "world_lost_output_usd": "world lost output (US$)",
    "peak_price_multiple": "peak world oxide price / start",
    "peak_price_multiple_light": "peak La/Ce oxide price / start",
    "peak_price_multiple_ndpr": "peak NdPr oxide price / start",
    "peak_price_multiple_heavy": "peak Dy/Tb oxide price / start",
    "months_to_peak": "months to the price peak",
    "months_to_fall_back": "months for the price to fall back",
    "concession": "concession obtained (1 = yes)",
}
"""Readable names of the outcomes (the CLI's summary and the wargame's debrief)."""


def outcome_label(key: str, target: str | None = None) -> str:
    """An outcome's readable name; with ``target``, "target's" names the state."""
    label = OUTCOME_LABELS.get(key, key.replace("_", " "))
    return label.replace("target's", f"{target}'s") if target else label


def compute_outcomes(
    df: pd.DataFrame, target: str, coercer: str, discount_rate: float
) -> dict[str, float]:
    """Section-6 outcomes of one run (see docs/OUTPUTS.md for definitions)."""
    out: dict[str, float] = {}
    for stage, key in (("concentrate", "mining"), ("oxide", "separation"), ("magnet", "magnet")):
        out[f"coercer_share_{key}_end"] = (
            _tail_mean(series(df, "china_share", stage=stage)) if coercer == "China" else math.nan
        )
    rev = series(df, "revenue_usd", country=coercer)
    t = np.arange(len(rev))
    out["coercer_revenue_discounted_usd"] = float(
        (rev.to_numpy() * (1.0 + discount_rate) ** (-t / 12.0)).sum()
    )
    dep = series(df, "import_share_from_china", country=target)
    out["target_dependence_end"] = _tail_mean(dep)
    out["target_dependence_mean"] = float(dep.mean()) if len(dep) else math.nan
    out["target_months_to_below_50pct"] = _first_below(dep, 0.5)
    cap = df[
        (df["variable"] == "capacity_t_per_year")
        & (df["country"] != coercer)
        & df["stage"].isin(["concentrate", "oxide"])
    ]
    last = cap["date"].max()
    out["ex_coercer_capacity_t_per_year"] = float(cap.loc[cap["date"] == last, "value"].sum())
    for stage, key in (("concentrate", "mining"), ("oxide", "separation")):
        out[f"ex_coercer_{key}_capacity_t_per_year"] = float(
            cap.loc[(cap["date"] == last) & (cap["stage"] == stage), "value"].sum()
        )
    out["target_stockpile_t_end"] = float(series(df, "stockpile_t", country=target).iloc[-1])
    rec = series(df, "recycled_t")
    out["world_recycled_t_per_year_end"] = float(rec.iloc[-12:].sum())
    out["target_intensity_ndpr_end"] = float(
        series(df, "intensity_index", country=target, good="ndpr").iloc[-1]
    )
    out["target_lost_output_usd"] = float(series(df, "lost_output_usd", country=target).sum())
    out["world_lost_output_usd"] = float(series(df, "lost_output_usd").sum())
    peaks = []
    for good in ("light", "ndpr", "heavy"):
        p = series(df, "price", segment="world", good=good, stage="oxide")
        rel = p / p.iloc[0]
        k = int(np.argmax(rel.to_numpy()))
        back = np.flatnonzero(rel.to_numpy()[k:] <= 1.25)
        peaks.append((float(rel.iloc[k]), k, float(back[0]) if back.size else math.nan, good))
    best = max(peaks)
    out["peak_price_multiple"] = best[0]
    out["months_to_peak"] = float(best[1])
    out["months_to_fall_back"] = best[2]
    for mult, _, _, good in peaks:
        out[f"peak_price_multiple_{good}"] = mult
    conc = series(df, "concession", country=target)
    out["concession"] = float(conc.max()) if len(conc) else 0.0
    return out


def concession_of(df: pd.DataFrame, target: str) -> dict:
    """Whether and when the target conceded (from the ``concession`` series)."""
    conc = series(df, "concession", country=target)
    hit = conc[conc > 0]
    if hit.empty:
        return {"obtained": False, "date": None}
    return {"obtained": True, "date": pd.Timestamp(hit.index[0]).strftime("%Y-%m")}


def verdict(run: dict, cf: dict, concession: bool, p: VerdictParams) -> str:
    """The leverage verdict from outcomes against the counterfactual.

    ``backfire`` holds when, against the counterfactual, the coercer lost at least
    ``share_loss_pp`` points of world mining share, or capacity outside the coercer (mining plus
    separation) grew by at least ``capacity_gain_share`` of its counterfactual level, or the
    coercer's discounted rare-earth revenue fell by at least ``revenue_loss_share``. Then:

    ============  ===============  ==============
    concession    backfire         verdict
    ============  ===============  ==============
    yes           no               ``succeeded``
    yes           yes              ``mixed``
    no            yes              ``backfired``
    no            no               ``no_effect``
    ============  ===============  ==============
    """
    return verdict_parts(run, cf, concession, p)["verdict"]


def verdict_parts(run: dict, cf: dict, concession: bool, p: VerdictParams) -> dict:
    """The verdict with the three backfire tests that decided it (for explanations)."""
    share_delta_pp = 100.0 * (run["coercer_share_mining_end"] - cf["coercer_share_mining_end"])
    cap_cf = max(cf["ex_coercer_capacity_t_per_year"], 1.0)
    cap_gain = (
        run["ex_coercer_capacity_t_per_year"] - cf["ex_coercer_capacity_t_per_year"]
    ) / cap_cf
    rev_cf = max(abs(cf["coercer_revenue_discounted_usd"]), 1.0)
    rev_change = (
        run["coercer_revenue_discounted_usd"] - cf["coercer_revenue_discounted_usd"]
    ) / rev_cf
    tests = {
        "share_loss": bool(not math.isnan(share_delta_pp) and share_delta_pp <= -p.share_loss_pp),
        "capacity_gain": bool(cap_gain >= p.capacity_gain_share),
        "revenue_loss": bool(rev_change <= -p.revenue_loss_share),
    }
    backfire = any(tests.values())
    if concession:
        v = "mixed" if backfire else "succeeded"
    else:
        v = "backfired" if backfire else "no_effect"
    return {
        "verdict": v,
        "backfire_tests": tests,
        "share_delta_pp": share_delta_pp,
        "capacity_gain_share": cap_gain,
        "revenue_change_share": rev_change,
    }


def paired(run: dict, cf: dict) -> dict:
    """``{name: {"run", "counterfactual", "delta"}}`` with NaN written as None."""

    def clean(x):
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else x

    out = {}
    for k in run:
        a, b = run[k], cf.get(k, math.nan)
        d = a - b if not (math.isnan(a) or math.isnan(b)) else math.nan
        out[k] = {"run": clean(a), "counterfactual": clean(b), "delta": clean(d)}
    return out


def _fmt_t(x: float) -> str:
    return f"{x:+,.0f} t/yr"


def explain(
    run_df: pd.DataFrame,
    cf_df: pd.DataFrame,
    target: str,
    coercer: str,
    parts: dict,
    concession: dict,
    limit: int = 6,
) -> list[str]:
    """A short list of the largest contributions to the verdict, computed from the outputs.

    Items whose backfire test held come first; each sentence names its size and, where it
    helps, who carried it (the country or sector with the largest share).
    """
    items: list[tuple[float, str]] = []
    # concession
    if concession["obtained"]:
        ten = series(run_df, "tension", country=coercer, partner=target)
        opened = pd.Timestamp(ten.index[0]).strftime("%Y-%m") if len(ten) else "?"
        items.append((10.0, f"{target} conceded in {concession['date']} (dispute opened {opened})"))
    else:
        items.append((0.5, f"{target} did not concede"))
    # share of world mining
    d_pp = parts["share_delta_pp"]
    if not math.isnan(d_pp):
        weight = 5.0 + abs(d_pp) if parts["backfire_tests"]["share_loss"] else abs(d_pp) / 2
        items.append(
            (
                weight,
                f"{coercer}'s share of world mining {d_pp:+.1f} pp against the "
                "counterfactual (last 12 months)",
            )
        )

    # capacity outside the coercer, by country
    def cap_by_country(df):
        c = df[
            (df["variable"] == "capacity_t_per_year")
            & (df["country"] != coercer)
            & df["stage"].isin(["concentrate", "oxide"])
        ]
        last = c["date"].max()
        return c[c["date"] == last].groupby("country", observed=True)["value"].sum()

    delta = cap_by_country(run_df).sub(cap_by_country(cf_df), fill_value=0.0)
    total = float(delta.sum())
    if abs(total) >= 1.0:
        lead = delta.abs().idxmax()
        share = float(delta[lead] / total)
        horizon = pd.Timestamp(run_df["date"].max()).strftime("%Y-%m")
        # A share of the total reads well only when every country moved the same way as the
        # total; otherwise (some up, some down) name the largest mover by its own tonnes.
        if 0.0 < share <= 1.0:
            part = f"of which {lead} {share:.0%}"
        else:
            part = f"largest change {lead} {_fmt_t(float(delta[lead]))}"
        text = (
            f"capacity outside {coercer} (mining + separation) {_fmt_t(total)} by {horizon}"
            f" against the counterfactual, {part}"
        )
        weight = (
            5.0 + abs(parts["capacity_gain_share"]) * 10
            if parts["backfire_tests"]["capacity_gain"]
            else abs(parts["capacity_gain_share"]) * 10
        )
        items.append((weight, text))
    # revenue
    r = parts["revenue_change_share"]
    weight = 5.0 + abs(r) * 10 if parts["backfire_tests"]["revenue_loss"] else abs(r) * 10
    items.append(
        (weight, f"{coercer}'s discounted rare-earth revenue {r:+.1%} against the counterfactual")
    )
    # the target's shortages and its stockpile
    fill = run_df[(run_df["variable"] == "fill_rate") & (run_df["country"] == target)]
    fill = fill.groupby("date", observed=True)["value"].min()
    short = fill[fill < 0.95].index
    if len(short):
        pile = series(run_df, "stockpile_t", country=target)
        drawn = (pile.diff() < -1e-6).reindex(short, fill_value=False)
        items.append(
            (
                1.0 + len(short) / 12,
                f"{target}'s stockpile covered {int(drawn.sum())} of {len(short)} shortage months",
            )
        )
    # lost output, by sector
    lost = run_df[(run_df["variable"] == "lost_output_usd") & (run_df["country"] == target)]
    lost_cf = float(series(cf_df, "lost_output_usd", country=target).sum())
    if len(lost):
        by_sector = lost.groupby("sector", observed=True)["value"].sum()
        tot = float(by_sector.sum())
        if tot > 0:
            top = by_sector.idxmax()
            items.append(
                (
                    1.0 + abs(tot - lost_cf) / max(tot, 1.0),
                    f"{target} lost US${tot / 1e9:,.2f} bn of output "
                    f"({(tot - lost_cf) / 1e9:+,.2f} bn against the counterfactual), "
                    f"{by_sector[top] / tot:.0%} in {top}",
                )
            )
    # price peak
    best = None
    for good in ("light", "ndpr", "heavy"):
        p = series(run_df, "price", segment="world", good=good, stage="oxide")
        if len(p):
            rel = p / p.iloc[0]
            k = int(np.argmax(rel.to_numpy()))
            if best is None or rel.iloc[k] > best[0]:
                best = (float(rel.iloc[k]), good, pd.Timestamp(rel.index[k]).strftime("%Y-%m"))
    if best:
        items.append(
            (
                math.log(max(best[0], 1.0)),
                f"world {best[1]} oxide price peaked at {best[0]:.1f}x its start in {best[2]}",
            )
        )
    items.sort(key=lambda t: -t[0])
    return [text for _, text in items[:limit]]
