"""Static charts (PNG) of a run against its counterfactual, drawn with matplotlib (Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from abm.outcomes import series  # noqa: E402

# Okabe-Ito colour-blind-safe palette; one colour per country and per good everywhere
COUNTRY_COLOURS = {
    "China": "#D55E00",
    "Japan": "#0072B2",
    "United States": "#009E73",
    "Australia": "#E69F00",
    "EU": "#56B4E9",
    "Korea": "#CC79A7",
    "Myanmar": "#F0E442",
    "Rest of World": "#999999",
}
GOOD_COLOURS = {"light": "#E69F00", "ndpr": "#0072B2", "heavy": "#CC79A7"}
STAGE_COLOURS = {"concentrate": "#D55E00", "oxide": "#0072B2", "magnet": "#009E73"}
RUN_STYLE = {"scenario": "-", "counterfactual": "--"}


def headline_chart(ts: pd.DataFrame, summary: dict, path: str | Path) -> Path:
    """Four panels: oxide prices, China's shares, the target's dependence, ex-China capacity.

    Solid lines are the scenario, dashed the counterfactual.
    """
    target = summary.get("target", "Japan")
    coercer = summary.get("coercer", "China")
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), constrained_layout=True)
    runs = [r for r in ("scenario", "counterfactual") if (ts["run"] == r).any()]
    by_run = {r: ts[ts["run"] == r] for r in runs}
    ax = axes[0, 0]
    for r in runs:
        for good, colour in GOOD_COLOURS.items():
            p = series(by_run[r], "price", segment="world", good=good, stage="oxide")
            rel = p / p.iloc[0]
            ax.plot(
                rel.index,
                rel.values,
                RUN_STYLE[r],
                color=colour,
                label=f"{good} oxide" if r == "scenario" else None,
            )
    ax.set_yscale("log")
    ax.set_title("World oxide prices (outside China)")
    ax.set_ylabel("price / starting price (log scale)")
    ax.legend(loc="upper left", fontsize=8)
    ax = axes[0, 1]
    for r in runs:
        for stage, colour in STAGE_COLOURS.items():
            s = series(by_run[r], "china_share", stage=stage)
            ax.plot(
                s.index,
                100 * s.rolling(3, min_periods=1).mean(),
                RUN_STYLE[r],
                color=colour,
                label=f"{stage}" if r == "scenario" else None,
            )
    ax.set_title(f"{coercer}'s share of world output by stage")
    ax.set_ylabel("% of world output (3-month mean)")
    ax.set_ylim(0, 100)
    ax.legend(loc="lower left", fontsize=8)
    ax = axes[1, 0]
    for r in runs:
        d = series(by_run[r], "import_share_from_china", country=target)
        ax.plot(
            d.index,
            100 * d.rolling(6, min_periods=1).mean(),
            RUN_STYLE[r],
            color=COUNTRY_COLOURS.get(target, "k"),
            label=r,
        )
    ax.axhline(50, color="#999999", lw=0.8, ls=":")
    ax.set_title(f"{target}'s dependence on {coercer}")
    ax.set_ylabel(f"% of {target}'s imports from {coercer} (6-month mean)")
    ax.set_ylim(0, 100)
    ax.legend(loc="lower left", fontsize=8)
    ax = axes[1, 1]
    for r in runs:
        sub = by_run[r]
        cap = sub[
            (sub["variable"] == "capacity_t_per_year")
            & (sub["country"] != coercer)
            & sub["stage"].isin(["concentrate", "oxide"])
        ]
        tot = cap.groupby(["date", "stage"], observed=True)["value"].sum().unstack()
        for stage, colour in (
            ("concentrate", STAGE_COLOURS["concentrate"]),
            ("oxide", STAGE_COLOURS["oxide"]),
        ):
            if stage in tot:
                ax.plot(
                    tot.index,
                    tot[stage] / 1000,
                    RUN_STYLE[r],
                    color=colour,
                    label=("mining" if stage == "concentrate" else "separation")
                    if r == "scenario"
                    else None,
                )
    ax.set_title(f"Capacity outside {coercer}")
    ax.set_ylabel("thousand t REO per year")
    ax.legend(loc="upper left", fontsize=8)
    for a in axes.flat:
        a.set_xlabel("date")
        a.grid(alpha=0.3)
    verdict = summary.get("verdict")
    fig.suptitle(
        f"{summary.get('scenario')} (seed {summary.get('seed')}): verdict {verdict}"
        "  —  solid: scenario, dashed: counterfactual",
        fontsize=11,
    )
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
