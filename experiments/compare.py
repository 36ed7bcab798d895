"""Robustness across behaviour and instruments: strategies compared, instruments contrasted.

``compare_strategies`` runs one scenario with every state on each strategy in turn, over seeds,
each run paired with its counterfactual, and tallies the verdicts. ``contrast_instruments`` runs
a built-in set of restriction designs (temporary vs sustained, targeted vs global, heavy-only vs
broad) on top of ``baseline-2025``. Both use processes on the local cores; seeds come from one
``SeedSequence`` and are recorded per run.
"""

from __future__ import annotations

import copy
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from abm.constants import COUNTRIES
from abm.scenario import STRATEGIES, build_scenario, resolve_raw

COMPARED = tuple(s for s in STRATEGIES if s != "human")
KEYS = {
    "coercer_share_mining_end": ("share_delta_pp", 100.0),
    "ex_coercer_capacity_t_per_year": ("capacity_delta_t_per_year", 1.0),
    "coercer_revenue_discounted_usd": ("revenue_delta_usd", 1.0),
    "target_lost_output_usd": ("target_lost_output_delta_usd", 1.0),
    "target_dependence_end": ("target_dependence_delta", 1.0),
}


def seeds_from(master: int, n: int) -> list[int]:
    """``n`` seeds spawned from one master seed (reproducible, independent streams)."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(master).spawn(n)]


def _one(task: tuple) -> dict:
    """Run one scenario table with its counterfactual and return a row of results."""
    from experiments.runner import run_scenario

    label, raw, seed, months = task
    raw = dict(raw)
    if months:
        raw["months"] = months
    raw["seed"] = seed
    scn = build_scenario(raw)
    res = run_scenario(scn)
    s = res.summary
    row = {
        "label": label,
        "seed": seed,
        "verdict": s["verdict"],
        "concession": bool(s["concession"]["obtained"]),
    }
    for key, (name, scale) in KEYS.items():
        delta = s["outcomes"][key]["delta"]
        row[name] = np.nan if delta is None else delta * scale
    rev_cf = s["outcomes"]["coercer_revenue_discounted_usd"]["counterfactual"] or np.nan
    row["revenue_delta_share"] = row["revenue_delta_usd"] / rev_cf if rev_cf else np.nan
    return row


def _run(tasks: list[tuple], workers: int | None) -> pd.DataFrame:
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(tasks) == 1:
        rows = [_one(t) for t in tasks]
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
            rows = list(pool.map(_one, tasks))
    return pd.DataFrame(rows)


def tally(runs: pd.DataFrame) -> pd.DataFrame:
    """Per label: share of seeds per verdict, concession rate and median deltas."""
    verdicts = ("succeeded", "backfired", "mixed", "no_effect")
    out = []
    for label, g in runs.groupby("label", sort=False):
        row = {"label": label, "runs": len(g)}
        for v in verdicts:
            row[f"share_{v}"] = float((g["verdict"] == v).mean())
        row["concession_rate"] = float(g["concession"].mean())
        for col in (
            "share_delta_pp",
            "capacity_delta_t_per_year",
            "revenue_delta_share",
            "target_lost_output_delta_usd",
            "target_dependence_delta",
        ):
            row[f"median_{col}"] = float(g[col].median())
        out.append(row)
    return pd.DataFrame(out)


def compare_strategies(
    scenario: str,
    seeds: int = 10,
    workers: int | None = None,
    months: int | None = None,
    master_seed: int = 7,
    strategies: tuple[str, ...] = COMPARED,
) -> pd.DataFrame:
    """Run ``scenario`` with every state on each strategy, over seeds; one row per run."""
    raw = resolve_raw(scenario)
    tasks = []
    for strat in strategies:
        r = copy.deepcopy(raw)
        for c in COUNTRIES:
            table = r.setdefault("countries", {}).setdefault(c, {})
            table["strategy"] = strat
            if strat in ("roth_erev", "ewa", "lookahead"):
                table["decision_every_months"] = 3
        r.setdefault("name", Path(scenario).stem)
        tasks += [(strat, r, s, months) for s in seeds_from(master_seed, seeds)]
    return _run(tasks, workers)


def _event(**kw) -> dict:
    return dict(kw)


def contrast_designs(start: str = "2026-01") -> dict[str, list[dict]]:
    """The built-in restriction designs, each a list of events added to baseline-2025."""
    y, m = (int(x) for x in start.split("-"))

    def plus(months):
        t = y * 12 + m - 1 + months
        return f"{t // 12:04d}-{t % 12 + 1:02d}"

    def lic(target, goods, months, rate=0.2):
        return _event(
            type="licensing",
            date=start,
            end=plus(months - 1),
            exporter="China",
            target=target,
            goods=list(goods),
            approval_rate=rate,
        )

    broad = ("light", "ndpr", "heavy")
    return {
        "temporary (6 months, Japan)": [lic("Japan", broad, 6)],
        "sustained (48 months, Japan)": [lic("Japan", broad, 48)],
        "targeted (24 months, Japan)": [lic("Japan", broad, 24)],
        "global (24 months, all buyers)": [lic("all", broad, 24)],
        "heavy only (24 months, all buyers)": [lic("all", ("heavy",), 24)],
        "broad (24 months, all buyers)": [lic("all", broad, 24)],
    }


def contrast_instruments(
    seeds: int = 10, workers: int | None = None, months: int | None = 120, master_seed: int = 11
) -> pd.DataFrame:
    """Run every restriction design over seeds (each with its counterfactual)."""
    raw = resolve_raw("baseline-2025")
    tasks = []
    for label, events in contrast_designs().items():
        r = dict(raw)
        r["name"] = label
        r["events"] = list(raw.get("events", [])) + events
        tasks += [(label, r, s, months) for s in seeds_from(master_seed, seeds)]
    return _run(tasks, workers)


def verdict_chart(summary: pd.DataFrame, path: str | Path, title: str) -> Path:
    """Stacked bars: share of seeds per verdict, one bar per label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {
        "succeeded": "#009E73",
        "mixed": "#E69F00",
        "backfired": "#D55E00",
        "no_effect": "#999999",
    }
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(summary) + 1.8), constrained_layout=True)
    left = np.zeros(len(summary))
    for v, colour in colours.items():
        vals = summary[f"share_{v}"].to_numpy()
        ax.barh(summary["label"], vals, left=left, color=colour, label=v)
        left += vals
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of seeds")
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize=8, ncols=4)
    ax.set_title(title)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
