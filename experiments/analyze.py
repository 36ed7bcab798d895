"""Analysis of a sweep's results table (it never runs the model).

- tables per lever and uncertainty: verdict shares and median outcome deltas by factor level;
- global sensitivity (SALib): Sobol first-order and total indices for a ``sobol`` design,
  Morris elementary effects for a ``morris`` design, on replicate-mean outcome deltas;
- scenario discovery with PRIM (Friedman and Fisher 1999, as used for robust decision making,
  Lempert et al. 2006): the box of inputs in which coercion most often backfires, peeled a few
  percent at a time while its density rises;
- charts (PNG) and one self-contained HTML page with everything.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.runner import atomic_dir
from experiments.sweep import SweepError, collect

VERDICTS = ("succeeded", "backfired", "mixed", "no_effect")


def load(out: str | Path) -> tuple[pd.DataFrame, dict]:
    """The results table (collected if needed) and the sweep's manifest."""
    out = Path(out)
    meta_path = out / "sweep.json"
    if not meta_path.is_file():
        raise SweepError(f"analyze: {out} has no sweep.json (is it a sweep folder?)")
    meta = json.loads(meta_path.read_text())
    path = out / "results.parquet"
    df = pd.read_parquet(path) if path.is_file() else collect(out)
    return df, meta


def factor_table(df: pd.DataFrame, keys: list[str], deltas: list[str], bins: int = 4):
    """Per factor and level: runs, share of each verdict, median of each outcome delta."""
    ok = df[df["status"] == "ok"]
    rows = []
    for key in keys:
        col = ok[key]
        if pd.api.types.is_numeric_dtype(col) and col.nunique() > bins:
            level = pd.qcut(col, bins, duplicates="drop").astype(str)
        else:
            level = col.astype(str)
        for lv, g in ok.groupby(level, sort=True):
            row = {"factor": key, "level": lv, "runs": len(g)}
            for v in VERDICTS:
                row[f"share_{v}"] = float((g["verdict"] == v).mean())
            for d in deltas:
                row[f"median_{d}"] = float(g[d].median())
            rows.append(row)
    return pd.DataFrame(rows)


def sensitivity(df: pd.DataFrame, meta: dict, design: pd.DataFrame, deltas: list[str]):
    """Sobol or Morris indices per outcome delta (None when the design allows neither)."""
    if meta["design"] not in ("sobol", "morris"):
        return None
    keys = [f["key"] for f in meta["factors"]]
    problem = {"num_vars": len(keys), "names": keys, "bounds": [[0.0, 1.0]] * len(keys)}
    ok = df[df["status"] == "ok"]
    rows = []
    for d in deltas:
        y = ok.groupby("point")[d].mean().reindex(design["point"])
        if y.isna().any():  # a point without a successful run: indices are undefined
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
                        "outcome": d,
                        "factor": key,
                        "S1": res["S1"][k],
                        "ST": res["ST"][k],
                        "S1_conf": res["S1_conf"][k],
                        "ST_conf": res["ST_conf"][k],
                    }
                )
        else:
            from SALib.analyze import morris

            x = design[[f"u:{k}" for k in keys]].to_numpy()
            res = morris.analyze(
                problem,
                x,
                y.to_numpy(),
                num_levels=4,
                print_to_console=False,
                seed=meta["master_seed"],
            )
            for k, key in enumerate(keys):
                rows.append(
                    {
                        "outcome": d,
                        "factor": key,
                        "mu_star": res["mu_star"][k],
                        "sigma": res["sigma"][k],
                        "mu_star_conf": res["mu_star_conf"][k],
                    }
                )
    return pd.DataFrame(rows)


def prim(x: pd.DataFrame, y: np.ndarray, alpha: float = 0.05, min_support: float = 0.1):
    """Patient rule induction: peel the box while the share of ``y`` inside it rises.

    Each step removes the ``alpha`` share of the remaining runs at the lower or upper end of one
    numeric factor (or one level of a categorical factor), whichever raises the mean of ``y``
    in the box most; it stops when no peel raises it or the box holds less than
    ``min_support`` of the runs. Returns the box and its peeling trajectory.
    """
    inside = np.ones(len(y), dtype=bool)
    traj = [{"coverage": 1.0, "density": float(y.mean()), "support": 1.0}]
    limits: dict[str, object] = {}
    total_hits = max(float(y.sum()), 1e-12)
    while inside.mean() > min_support:
        best = None
        base = y[inside].mean()
        for col in x.columns:
            v = x[col].to_numpy()
            if pd.api.types.is_numeric_dtype(x[col]):
                vals = v[inside].astype(float)
                lo, hi = np.quantile(vals, alpha), np.quantile(vals, 1 - alpha)
                for side, keep in (("min", v >= lo), ("max", v <= hi)):
                    cand = inside & keep
                    if cand.sum() < len(y) * min_support or cand.sum() == inside.sum():
                        continue
                    gain = y[cand].mean() - base
                    if best is None or gain > best[0]:
                        best = (gain, cand, col, side, lo if side == "min" else hi)
            else:
                for level in pd.unique(v[inside]):
                    cand = inside & (v != level)
                    if cand.sum() < len(y) * min_support:
                        continue
                    gain = y[cand].mean() - base
                    if best is None or gain > best[0]:
                        best = (gain, cand, col, "drop", level)
        if best is None or best[0] <= 1e-12:
            break
        _, inside, col, side, val = best
        if side == "drop":
            limits.setdefault(col, set()).add(val)
        else:
            limits[(col, side)] = float(val)
        traj.append(
            {
                "coverage": float(y[inside].sum() / total_hits),
                "density": float(y[inside].mean()),
                "support": float(inside.mean()),
            }
        )
    box = []
    for key, val in limits.items():
        if isinstance(key, tuple):
            box.append({"factor": key[0], "bound": key[1], "value": val})
        else:
            box.append({"factor": key, "bound": "excluded", "value": ", ".join(map(str, val))})
    return pd.DataFrame(box), pd.DataFrame(traj)


def _png(fig) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def analyze(out: str | Path) -> dict:
    """Write the analysis into ``out/analysis/`` and return its tables."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    df, meta = load(out)
    keys = [f["key"] for f in meta["factors"]]
    deltas = [f"{o}.delta" for o in meta["outcomes"] if f"{o}.delta" in df.columns]
    design = pd.read_parquet(out / "design.parquet")
    by_factor = factor_table(df, keys, deltas)
    sens = sensitivity(df, meta, design, deltas)
    ok = df[df["status"] == "ok"]
    y = (ok["verdict"] == "backfired").to_numpy().astype(float)
    x = ok[keys].copy()
    box, traj = prim(x, y) if y.sum() > 0 and y.sum() < len(y) else (pd.DataFrame(), pd.DataFrame())
    figs = {}
    n = len(keys)
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3.4), squeeze=False, constrained_layout=True)
    for ax, key in zip(axes[0], keys, strict=True):
        t = by_factor[by_factor["factor"] == key]
        ax.bar(range(len(t)), t["share_backfired"], color="#D55E00", label="backfired")
        ax.bar(
            range(len(t)),
            t["share_succeeded"],
            bottom=t["share_backfired"],
            color="#009E73",
            label="succeeded",
        )
        ax.set_xticks(range(len(t)))
        ax.set_xticklabels(t["level"], rotation=30, ha="right", fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_title(key, fontsize=8)
        ax.set_ylabel("share of runs")
    axes[0][0].legend(fontsize=7)
    figs["verdicts_by_factor.png"] = _png(fig)
    plt.close(fig)
    if sens is not None and len(sens):
        col = "ST" if "ST" in sens else "mu_star"
        pivot = sens.pivot(index="factor", columns="outcome", values=col)
        fig, ax = plt.subplots(figsize=(8, 0.5 * len(pivot) + 2), constrained_layout=True)
        pivot.plot.barh(ax=ax)
        ax.set_xlabel("total-order Sobol index" if col == "ST" else "Morris mu*")
        ax.legend(fontsize=6)
        figs["sensitivity.png"] = _png(fig)
        plt.close(fig)

    def write(tmp: Path) -> None:
        by_factor.to_csv(tmp / "by_factor.csv", index=False)
        if sens is not None:
            sens.to_csv(tmp / "sensitivity.csv", index=False)
        box.to_csv(tmp / "prim_box.csv", index=False)
        traj.to_csv(tmp / "prim_trajectory.csv", index=False)
        for name, data in figs.items():
            (tmp / name).write_bytes(data)
        imgs = "".join(
            f'<h3>{name}</h3><img src="data:image/png;base64,{base64.b64encode(data).decode()}"/>'
            for name, data in figs.items()
        )
        html = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{meta['name']}</title>"
            "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
            "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;"
            "padding:2px 6px}</style></head><body>"
            f"<h1>Sweep {meta['name']}</h1><p>{len(df)} runs ({len(ok)} ok) of "
            f"{meta['base']}, {meta['design']} design, {meta['replicates']} replicates.</p>"
            f"<h2>Verdicts and outcomes by factor</h2>{by_factor.to_html(index=False)}"
            + (f"<h2>Sensitivity</h2>{sens.to_html(index=False)}" if sens is not None else "")
            + "<h2>Where coercion backfires (PRIM box)</h2>"
            + (
                box.to_html(index=False)
                if len(box)
                else "<p>No box: too few or too many backfired runs to separate.</p>"
            )
            + f"{imgs}</body></html>"
        )
        (tmp / "report.html").write_text(html, encoding="utf-8")

    atomic_dir(out / "analysis", write)
    return {"by_factor": by_factor, "sensitivity": sens, "prim_box": box, "prim_trajectory": traj}
