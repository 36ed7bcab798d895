"""Analysis of results tables: a sweep folder or a single run folder (it never runs the model).

For a **sweep** (``sweep.json``, ``design.parquet`` and ``results/`` parts):

- tables per lever and uncertainty: verdict shares, the share of runs meeting the sweep's
  ``goal`` and median outcomes by factor level (numeric factors in quartiles);
- global sensitivity (SALib): Sobol first-order and total indices for a ``sobol`` design,
  Morris elementary effects (mu*, sigma) for a ``morris`` design, on the replicate mean of each
  outcome delta and of the probability of ``backfired``;
- scenario discovery with PRIM (patient rule induction; Friedman and Fisher 1999, as used in
  robust decision making, Bryant and Lempert 2010): the box of inputs in which coercion most
  often backfires (and, when the sweep has a goal, the box in which the goal is met);
- charts (PNG) and one self-contained HTML page (images embedded, no external links).

For a **run** (``summary.json`` and ``timeseries.parquet`` from ``lanthanide run``): the
outcome table (run, counterfactual, delta), the verdict and its explanation, and the headline
chart redrawn from the time series.

Everything goes into ``DIR/analysis/``, written atomically.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.runner import atomic_dir
from experiments.sweep import SweepError, collect

VERDICTS = ("succeeded", "backfired", "mixed", "no_effect")
VERDICT_COLOURS = {
    "succeeded": "#009E73",
    "backfired": "#D55E00",
    "mixed": "#E69F00",
    "no_effect": "#999999",
}


class AnalysisError(SweepError):
    """A folder that cannot be analysed (one-line message, exit code 2 in the CLI)."""


# ----------------------------------------------------------------------------- loading


def load(out: str | Path) -> tuple[pd.DataFrame, dict]:
    """The sweep's results table (all shards, collected if needed) and its manifest."""
    out = Path(out)
    meta_path = out / "sweep.json"
    if not meta_path.is_file():
        raise AnalysisError(f"analyze: {out} has no sweep.json (is it a sweep folder?)")
    meta = json.loads(meta_path.read_text())
    path = out / "results.parquet"
    parts = list(out.glob("**/results/part-*.parquet"))
    if path.is_file() and all(p.stat().st_mtime <= path.stat().st_mtime for p in parts):
        df = pd.read_parquet(path)
    elif parts:
        df = collect(out)
    else:
        raise AnalysisError(f"analyze: {out} holds no results yet")
    return df, meta


@dataclass(frozen=True)
class Goal:
    """A case of interest: runs whose ``column`` is below (or above) ``threshold``."""

    column: str
    below: bool
    threshold: float

    @property
    def label(self) -> str:
        """A human-readable statement of the goal."""
        return f"{self.column} {'<' if self.below else '>'} {self.threshold:g}"

    def met(self, df: pd.DataFrame) -> np.ndarray:
        """True where a run meets the goal (NaN never does)."""
        v = df[self.column].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            return np.where(
                np.isnan(v), False, v < self.threshold if self.below else v > self.threshold
            )


def goal_of(meta: dict) -> Goal | None:
    """The sweep file's optional ``[goal]`` table as a :class:`Goal`."""
    g = (meta.get("sweep") or {}).get("goal")
    if not g:
        return None
    column = f"{g['outcome']}.{g.get('part', 'delta')}"
    if "below" in g:
        return Goal(column, True, float(g["below"]))
    return Goal(column, False, float(g["above"]))


# ----------------------------------------------------------------------------- tables


def _levels(col: pd.Series, bins: int) -> pd.Series:
    """Factor levels: numeric factors with many values in quantile bins labelled ``lo-hi``."""
    if pd.api.types.is_numeric_dtype(col) and col.nunique() > bins:
        codes, edges = pd.qcut(col, bins, labels=False, retbins=True, duplicates="drop")
        labels = [f"{edges[k]:.3g} to {edges[k + 1]:.3g}" for k in range(len(edges) - 1)]
        return codes.map(lambda c: labels[int(c)])
    return col.astype(str)


def factor_table(
    df: pd.DataFrame,
    factors: list[dict],
    outcomes: list[str],
    goal: Goal | None = None,
    bins: int = 4,
) -> pd.DataFrame:
    """Per factor and level: runs, share of each verdict (and of the goal), median outcomes.

    Args:
        df: the results table (failed runs are left out).
        factors: the manifest's factor records (``key`` and ``role``).
        outcomes: result columns to summarise (medians per level).
        goal: an optional case of interest; adds ``share_goal``.
        bins: numeric factors with more distinct values are cut into this many quantiles.
    """
    ok = df[df["status"] == "ok"]
    rows = []
    for f in factors:
        key = f["key"]
        level = _levels(ok[key], bins)
        order = ok.groupby(level, sort=False)[key].min().sort_values().index
        for lv in order:
            g = ok[level == lv]
            row = {"role": f["role"], "factor": key, "level": lv, "runs": len(g)}
            for v in VERDICTS:
                row[f"share_{v}"] = float((g["verdict"] == v).mean())
            if goal is not None:
                row["share_goal"] = float(goal.met(g).mean())
            for o in outcomes:
                row[f"median_{o}"] = float(g[o].median())
            rows.append(row)
    return pd.DataFrame(rows)


def combination_table(
    df: pd.DataFrame, keys: list[str], outcome: str, goal: Goal | None, bins: int = 2
) -> pd.DataFrame:
    """Runs grouped by the given factors at once (numeric factors in ``bins`` quantiles).

    Called with the levers, it ranks policy mixes (low/high halves of each lever by default)
    by the median of ``outcome``, with the share of runs that backfire or meet the goal.
    """
    ok = df[df["status"] == "ok"]
    levels = pd.DataFrame({k: _levels(ok[k], bins) for k in keys}, index=ok.index)
    g = ok.assign(**{f"_{k}": levels[k] for k in keys}).groupby([f"_{k}" for k in keys])
    t = g.agg(runs=(outcome, "size"), median=(outcome, "median"))
    t["share_backfired"] = g["verdict"].apply(lambda s: float((s == "backfired").mean()))
    if goal is not None:
        t["share_goal"] = g.apply(lambda x: float(goal.met(x).mean()), include_groups=False)
    t = t.reset_index().rename(columns={f"_{k}": k for k in keys})
    return t.sort_values("median").reset_index(drop=True)


def sensitivity(
    df: pd.DataFrame, meta: dict, design: pd.DataFrame, outcomes: list[str]
) -> pd.DataFrame | None:
    """Sobol (S1, ST) or Morris (mu*, sigma) indices per outcome; None for other designs.

    The model output at each design point is the mean over its replicates; ``backfired``
    (the share of replicates that backfired) is analysed as an outcome too. An outcome with a
    point that has no successful run, or that never varies, is skipped.
    """
    if meta["design"] not in ("sobol", "morris"):
        return None
    keys = [f["key"] for f in meta["factors"]]
    unit_cols = [f"u:{k}" for k in keys]
    if not set(unit_cols) <= set(design.columns):
        return None
    problem = {"num_vars": len(keys), "names": keys, "bounds": [[0.0, 1.0]] * len(keys)}
    ok = df[df["status"] == "ok"].assign(backfired=lambda d: (d["verdict"] == "backfired") * 1.0)
    cols = [*outcomes, "backfired"]
    # results are keyed by factor values: a repeated design point is one run (see tasks_for)
    means = ok.groupby(keys, dropna=False)[cols].mean().reset_index()
    per_point = design[["point", *keys]].merge(means, on=keys, how="left").sort_values("point")
    rows = []
    for col in cols:
        y = per_point[col]
        if y.isna().any() or float(y.std()) == 0.0:
            continue
        if meta["design"] == "sobol":
            from SALib.analyze import sobol

            res = sobol.analyze(
                problem,
                y.to_numpy(),
                calc_second_order=False,
                print_to_console=False,
                seed=meta["master_seed"],
            )
            for k, key in enumerate(keys):
                rows.append(
                    {
                        "outcome": col,
                        "factor": key,
                        "S1": float(res["S1"][k]),
                        "S1_conf": float(res["S1_conf"][k]),
                        "ST": float(res["ST"][k]),
                        "ST_conf": float(res["ST_conf"][k]),
                    }
                )
        else:
            from SALib.analyze import morris

            res = morris.analyze(
                problem,
                design[unit_cols].to_numpy(),
                y.to_numpy(),
                num_levels=4,
                print_to_console=False,
                seed=meta["master_seed"],
            )
            for k, key in enumerate(keys):
                rows.append(
                    {
                        "outcome": col,
                        "factor": key,
                        "mu_star": float(res["mu_star"][k]),
                        "mu_star_conf": float(res["mu_star_conf"][k]),
                        "sigma": float(res["sigma"][k]),
                    }
                )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- PRIM


@dataclass
class PrimResult:
    """A PRIM box: its limits, its statistics and the peeling trajectory it was chosen from."""

    box: pd.DataFrame  # factor, kind (min/max/levels), value
    stats: dict  # coverage, density, support, base_density, step
    trajectory: pd.DataFrame  # step, coverage, density, support, restricted


def prim(
    x: pd.DataFrame,
    y: np.ndarray,
    alpha: float = 0.05,
    min_support: float = 0.05,
    min_coverage: float = 0.5,
    prune_tol: float = 0.01,
) -> PrimResult:
    """Patient rule induction (Friedman and Fisher 1999): peel a box of inputs around ``y``.

    Starting from the box holding every run, each step removes the ``alpha`` share of the
    runs in the box at the low or high end of one numeric factor, or every run at one level of
    a categorical factor (a list of values), whichever raises the share of cases of interest
    (``y == 1``) inside the most per run removed (the patient criterion, so one coarse level
    does not win only because it removes many runs at once); peeling stops when no peel is
    possible without the box holding less than ``min_support`` of the runs. From this
    trajectory the box returned is the densest one that still covers at least
    ``min_coverage`` of all cases (ties: the larger box), the usual density-coverage trade-off
    of scenario discovery. Finally, restrictions
    that do not earn their place are dropped one at a time (each removal may lower the density
    by at most ``prune_tol``), so the box names only the inputs that matter.

    Args:
        x: one column per input (numeric or categorical), one row per run.
        y: 0/1 per run: is it a case of interest?
        alpha: share of the box peeled per step.
        min_support: the smallest box, as a share of all runs.
        min_coverage: the least share of all cases the chosen box must hold.
        prune_tol: the density a restriction must add to be kept.

    Returns:
        The chosen box, its statistics and the trajectory.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    hits = max(float(y.sum()), 1e-12)
    inside = np.ones(n, dtype=bool)
    numeric = {c: pd.api.types.is_numeric_dtype(x[c]) for c in x.columns}
    arrays = {
        c: x[c].to_numpy(dtype=float) if numeric[c] else x[c].astype(str).to_numpy()
        for c in x.columns
    }
    limits: dict[str, dict] = {c: {} for c in x.columns}
    steps = [(inside.copy(), {c: dict(v) for c, v in limits.items()})]
    while True:
        best = None
        base = y[inside].mean()
        for c in x.columns:
            v = arrays[c]
            if numeric[c]:
                vals = v[inside]
                lo, hi = np.quantile(vals, alpha), np.quantile(vals, 1 - alpha)
                for side in ("min", "max"):
                    if side == "min":  # drop the lowest values (at least the minimum)
                        keep = v > lo if lo <= vals.min() else v >= lo
                    else:
                        keep = v < hi if hi >= vals.max() else v <= hi
                    cand = inside & keep
                    m = int(cand.sum())
                    if m == int(inside.sum()) or m < max(n * min_support, 1):
                        continue
                    gain = (y[cand].mean() - base) / (inside.sum() - m)
                    if best is None or gain > best[0]:
                        bound = v[cand].min() if side == "min" else v[cand].max()
                        best = (gain, cand, c, side, float(bound))
            else:
                present = pd.unique(v[inside])
                if len(present) < 2:
                    continue
                for level in present:
                    cand = inside & (v != level)
                    m = int(cand.sum())
                    if m < max(n * min_support, 1):
                        continue
                    gain = (y[cand].mean() - base) / (inside.sum() - m)
                    if best is None or gain > best[0]:
                        best = (gain, cand, c, "drop", level)
        if best is None:
            break
        _, inside, c, side, val = best
        if side == "drop":
            kept = sorted(set(limits[c].get("levels", set(pd.unique(arrays[c])))) - {val})
            limits[c]["levels"] = set(kept)
        else:
            limits[c][side] = val
        steps.append((inside.copy(), {k: dict(v) for k, v in limits.items()}))
    traj = []
    for k, (box_in, lim) in enumerate(steps):
        traj.append(
            {
                "step": k,
                "coverage": float(y[box_in].sum() / hits),
                "density": float(y[box_in].mean()),
                "support": float(box_in.mean()),
                "restricted": sum(1 for v in lim.values() if v),
            }
        )
    traj = pd.DataFrame(traj)
    eligible = traj[traj["coverage"] >= min_coverage - 1e-12]
    pick = eligible.sort_values(["density", "support"], ascending=[False, False]).iloc[0]
    step = int(pick["step"])
    box_in, lim = steps[step]
    lim, box_in = _prune(arrays, y, lim, prune_tol)
    rows = []
    for c, spec in lim.items():
        if "min" in spec:
            rows.append({"factor": c, "kind": "min", "value": spec["min"]})
        if "max" in spec:
            rows.append({"factor": c, "kind": "max", "value": spec["max"]})
        if "levels" in spec:
            rows.append({"factor": c, "kind": "levels", "value": ", ".join(sorted(spec["levels"]))})
    stats = {
        "step": step,
        "coverage": float(y[box_in].sum() / hits),
        "density": float(y[box_in].mean()),
        "support": float(box_in.mean()),
        "base_density": float(y.mean()),
        "cases": int(y.sum()),
        "runs": n,
    }
    return PrimResult(pd.DataFrame(rows, columns=["factor", "kind", "value"]), stats, traj)


def _inside(arrays: dict, n: int, lim: dict) -> np.ndarray:
    m = np.ones(n, dtype=bool)
    for c, spec in lim.items():
        if "min" in spec:
            m &= arrays[c] >= spec["min"]
        if "max" in spec:
            m &= arrays[c] <= spec["max"]
        if "levels" in spec:
            m &= np.isin(arrays[c], sorted(spec["levels"]))
    return m


def _prune(arrays: dict, y: np.ndarray, lim: dict, tol: float) -> tuple[dict, np.ndarray]:
    """Drop, one at a time, the restriction whose removal costs least density, while <= tol."""
    lim = {c: dict(v) for c, v in lim.items()}
    n = len(y)
    while True:
        inside = _inside(arrays, n, lim)
        density = y[inside].mean()
        best = None
        for c, spec in lim.items():
            for kind in list(spec):
                trial = {k: dict(v) for k, v in lim.items()}
                del trial[c][kind]
                d = y[_inside(arrays, n, trial)].mean()
                if d >= density - tol and (best is None or d > best[0]):
                    best = (d, c, kind)
        if best is None:
            return lim, inside
        del lim[best[1]][best[2]]


# ----------------------------------------------------------------------------- charts


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _short(key: str) -> str:
    return key.replace("countries.", "").replace("firm_behaviour.", "")


def _verdict_chart(by_factor: pd.DataFrame, factors: list[dict], goal: Goal | None):
    import matplotlib.pyplot as plt

    n = len(factors)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.6), squeeze=False, constrained_layout=True)
    for ax, f in zip(axes[0], factors, strict=True):
        t = by_factor[by_factor["factor"] == f["key"]]
        xs = np.arange(len(t))
        bottom = np.zeros(len(t))
        for v in VERDICTS:
            share = t[f"share_{v}"].to_numpy()
            ax.bar(xs, share, bottom=bottom, color=VERDICT_COLOURS[v], label=v)
            bottom += share
        if goal is not None:
            ax.plot(xs, t["share_goal"], "k-o", ms=3, label="goal met")
        ax.set_xticks(xs)
        ax.set_xticklabels(t["level"], rotation=35, ha="right", fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_title(f"{_short(f['key'])} ({f['role']})", fontsize=8)
    axes[0][0].set_ylabel("share of runs")
    axes[0][-1].legend(fontsize=7, loc="upper right")
    return fig


def _scatter_chart(ok: pd.DataFrame, factors: list[dict], outcomes: list[str]):
    import matplotlib.pyplot as plt

    outcomes = outcomes[:4]
    nr, nc = len(outcomes), len(factors)
    fig, axes = plt.subplots(
        nr, nc, figsize=(3.2 * nc, 2.6 * nr), squeeze=False, constrained_layout=True
    )
    colours = ok["verdict"].map(VERDICT_COLOURS).fillna("#000000")
    rng = np.random.default_rng(0)  # jitter for value lists only; does not touch results
    for i, o in enumerate(outcomes):
        for j, f in enumerate(factors):
            ax = axes[i][j]
            xv = ok[f["key"]]
            if pd.api.types.is_numeric_dtype(xv):
                xs = xv.to_numpy(dtype=float)
                if xv.nunique() <= 8:
                    span = (xs.max() - xs.min()) or 1.0
                    xs = xs + rng.uniform(-0.015, 0.015, len(xs)) * span
            else:
                cats = sorted(xv.astype(str).unique())
                xs = xv.astype(str).map({c: k for k, c in enumerate(cats)}).to_numpy(dtype=float)
                ax.set_xticks(range(len(cats)))
                ax.set_xticklabels(cats, fontsize=6)
            ax.scatter(xs, ok[o], s=6, c=colours, alpha=0.7, linewidths=0)
            if i == nr - 1:
                ax.set_xlabel(_short(f["key"]), fontsize=7)
            if j == 0:
                ax.set_ylabel(o.replace(".", "\n"), fontsize=7)
            ax.tick_params(labelsize=6)
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], marker="o", ls="", color=c, label=v, ms=4)
        for v, c in VERDICT_COLOURS.items()
    ]
    axes[0][-1].legend(handles=handles, fontsize=6, loc="best")
    return fig


def _sensitivity_chart(sens: pd.DataFrame):
    import matplotlib.pyplot as plt

    col = "ST" if "ST" in sens else "mu_star"
    pivot = sens.pivot(index="factor", columns="outcome", values=col)
    pivot.index = [_short(k) for k in pivot.index]
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(pivot) * max(1, len(pivot.columns) / 4) + 2))
    pivot.plot.barh(ax=ax, width=0.8)
    ax.set_xlabel("total-order Sobol index ST" if col == "ST" else "Morris mu* (unit inputs)")
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    return fig


def _prim_chart(res: PrimResult, title: str):
    import matplotlib.pyplot as plt

    t = res.trajectory
    fig, ax = plt.subplots(figsize=(5.5, 4), constrained_layout=True)
    sc = ax.scatter(t["coverage"], t["density"], c=t["restricted"], cmap="viridis", s=18)
    fig.colorbar(sc, ax=ax, label="factors restricted")
    ax.plot(res.stats["coverage"], res.stats["density"], "r*", ms=14, label="chosen box")
    ax.set_xlabel("coverage (share of all cases inside the box)")
    ax.set_ylabel("density (share of the box that are cases)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return fig


# ----------------------------------------------------------------------------- report


def _table_html(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, escape=True)


def _page(title: str, sections: list[tuple[str, str]], figs: dict[str, bytes]) -> str:
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections)
    imgs = "".join(
        f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,"
        f"{base64.b64encode(data).decode()}'/><figcaption>{html.escape(name)}</figcaption>"
        "</figure>"
        for name, data in figs.items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:12px;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "img{max-width:100%}figcaption{font-size:11px;color:#555}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}<h2>Charts</h2>{imgs}</body></html>"
    )


def _prim_text(res: PrimResult | None, what: str) -> str:
    if res is None:
        return f"<p>No box: every run or no run is a case ({html.escape(what)}).</p>"
    s = res.stats
    lead = (
        f"<p>{s['cases']} of {s['runs']} runs are cases ({html.escape(what)}; base density "
        f"{s['base_density']:.0%}). The chosen box holds {s['support']:.0%} of the runs, "
        f"{s['coverage']:.0%} of the cases, and {s['density']:.0%} of the runs in it are cases."
        "</p>"
    )
    box = _table_html(res.box) if len(res.box) else "<p>(no restriction beats the whole space)</p>"
    return lead + box


def analyze_sweep(out: str | Path) -> dict:
    """Analyse a sweep folder into ``out/analysis/``; returns the tables."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    df, meta = load(out)
    factors = meta["factors"]
    keys = [f["key"] for f in factors]
    goal = goal_of(meta)
    deltas = [f"{o}.delta" for o in meta["outcomes"] if f"{o}.delta" in df.columns]
    design = pd.read_parquet(out / "design.parquet")
    ok = df[df["status"] == "ok"].reset_index(drop=True)
    if ok.empty:
        raise AnalysisError(f"analyze: {out}: every run failed; see the error column")
    focus = [goal.column] if goal else []
    by_factor = factor_table(df, factors, list(dict.fromkeys(focus + deltas)), goal)
    levers = [f["key"] for f in factors if f["role"] == "lever"] or keys
    combos = combination_table(df, levers, goal.column if goal else deltas[0], goal)
    sens = sensitivity(df, meta, design, list(dict.fromkeys(focus + deltas)))
    x = ok[keys]
    cases = {"backfired": (ok["verdict"] == "backfired").to_numpy(dtype=float)}
    if goal is not None:
        cases["goal"] = goal.met(ok).astype(float)
    prims = {name: prim(x, y) if 0 < y.sum() < len(y) else None for name, y in cases.items()}
    verdicts = ok["verdict"].value_counts().reindex(list(VERDICTS), fill_value=0)
    figs = {}
    for name, make in (
        ("verdicts_by_factor.png", lambda: _verdict_chart(by_factor, factors, goal)),
        ("outcomes_by_factor.png", lambda: _scatter_chart(ok, factors, focus + deltas)),
    ):
        fig = make()
        figs[name] = _png(fig)
        plt.close(fig)
    if sens is not None and len(sens):
        fig = _sensitivity_chart(sens)
        figs["sensitivity.png"] = _png(fig)
        plt.close(fig)
    for name, res in prims.items():
        if res is not None:
            fig = _prim_chart(res, f"PRIM peeling trajectory: {name}")
            figs[f"prim_{name}.png"] = _png(fig)
            plt.close(fig)
    failed = df[df["status"] != "ok"]
    intro = (
        f"<p>{len(df)} runs ({len(ok)} ok, {len(failed)} failed) of <b>{html.escape(meta['base'])}"
        f"</b>, {html.escape(meta['design'])} design, {meta['replicates']} replicates, "
        f"{meta['months']} months. Verdicts: "
        + ", ".join(f"{v} {int(c)}" for v, c in verdicts.items())
        + (
            f". Goal: {html.escape(goal.label)}, met by {goal.met(ok).mean():.0%} of runs"
            if goal
            else ""
        )
        + ".</p>"
    )
    sections = [
        ("Summary", intro),
        ("By lever and uncertainty", _table_html(by_factor)),
        ("Policy mixes: levers together, low and high halves (best first)", _table_html(combos)),
    ]
    if sens is not None:
        sections.append(
            (f"Sensitivity ({meta['design']})", _table_html(sens) if len(sens) else "<p>none</p>")
        )
    sections.append(
        ("Where coercion backfires (PRIM)", _prim_text(prims["backfired"], "backfired"))
    )
    if goal is not None:
        sections.append(("Where the goal is met (PRIM)", _prim_text(prims["goal"], goal.label)))
    if len(failed):
        sections.append(("Failed runs", _table_html(failed[["run_id", *keys, "error"]].head(50))))
    page = _page(f"Sweep {meta['name']}", sections, figs)

    def write(tmp: Path) -> None:
        by_factor.to_csv(tmp / "by_factor.csv", index=False)
        combos.to_csv(tmp / "combinations.csv", index=False)
        if sens is not None:
            sens.to_csv(tmp / "sensitivity.csv", index=False)
        for name, res in prims.items():
            if res is not None:
                res.box.to_csv(tmp / f"prim_{name}_box.csv", index=False)
                res.trajectory.to_csv(tmp / f"prim_{name}_trajectory.csv", index=False)
        (tmp / "summary.json").write_text(
            json.dumps(
                {
                    "runs": len(df),
                    "ok": len(ok),
                    "failed": len(failed),
                    "verdicts": {k: int(v) for k, v in verdicts.items()},
                    "goal": None
                    if goal is None
                    else {"label": goal.label, "share_met": float(goal.met(ok).mean())},
                    "prim": {
                        k: None if r is None else {**r.stats, "box": r.box.to_dict("records")}
                        for k, r in prims.items()
                    },
                },
                indent=2,
                default=str,
            )
            + "\n"
        )
        for name, data in figs.items():
            (tmp / name).write_bytes(data)
        (tmp / "report.html").write_text(page, encoding="utf-8")

    atomic_dir(out / "analysis", write)
    return {
        "kind": "sweep",
        "by_factor": by_factor,
        "combinations": combos,
        "sensitivity": sens,
        "prim": prims,
        "verdicts": verdicts,
        "goal": goal,
        "ok": ok,
    }


def analyze_run(out: str | Path) -> dict:
    """Analyse a ``lanthanide run`` folder into ``out/analysis/``; returns the outcome table."""
    from experiments.charts import headline_chart

    out = Path(out)
    summary = json.loads((out / "summary.json").read_text())
    ts = pd.read_parquet(out / "timeseries.parquet")
    table = pd.DataFrame(
        [{"outcome": k, **v} for k, v in summary["outcomes"].items()],
        columns=["outcome", "run", "counterfactual", "delta"],
    )
    c = summary.get("concession") or {}
    intro = (
        f"<p>{html.escape(str(summary.get('scenario')))} from {summary.get('start')}, "
        f"{summary.get('months')} months, seed {summary.get('seed')}. Verdict: "
        f"<b>{html.escape(str(summary.get('verdict')))}</b>; concession "
        f"{'obtained ' + str(c.get('date')) if c.get('obtained') else 'not obtained'}.</p>"
        + "".join(f"<li>{html.escape(str(t))}</li>" for t in summary.get("explanation") or [])
    )

    def write(tmp: Path) -> None:
        table.to_csv(tmp / "outcomes.csv", index=False)
        headline_chart(ts, summary, tmp / "headline.png")
        figs = {"headline.png": (tmp / "headline.png").read_bytes()}
        page = _page(
            f"Run {summary.get('scenario')} (seed {summary.get('seed')})",
            [("Summary", intro), ("Outcomes against the counterfactual", _table_html(table))],
            figs,
        )
        (tmp / "report.html").write_text(page, encoding="utf-8")

    atomic_dir(out / "analysis", write)
    return {"kind": "run", "outcomes": table, "verdict": summary.get("verdict")}


def analyze(out: str | Path) -> dict:
    """Analyse a sweep folder or a run folder (whichever ``out`` is) into ``out/analysis/``."""
    out = Path(out)
    if not out.is_dir():
        raise AnalysisError(f"analyze: {out} is not a folder")
    if (out / "sweep.json").is_file():
        return analyze_sweep(out)
    if (out / "summary.json").is_file() and (out / "timeseries.parquet").is_file():
        return analyze_run(out)
    raise AnalysisError(
        f"analyze: {out} is neither a sweep folder (sweep.json) nor a run folder "
        "(summary.json and timeseries.parquet)"
    )


__all__ = ["AnalysisError", "Goal", "analyze", "factor_table", "prim", "sensitivity"]
