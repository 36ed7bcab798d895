"""Check that a speed change left results identical: the full time series of one run, bit for bit.

``python -m benchmarks.same_output save REF.parquet`` runs what ``lanthanide run --seed 3`` runs
(the default scenario and its counterfactual, seed 3, the scenario's own size and horizon) and
writes its ``timeseries.parquet`` table to REF.parquet and its summary (outcomes, verdict) to
REF.summary.json. ``python -m benchmarks.same_output check REF.parquet`` runs it again and
compares every column exactly (values bit for bit, dtypes, categories, row order) and the
summary text; it prints the first differences and exits 1 if anything differs. ``--seed``,
``--firms``, ``--months`` and ``--scenario`` choose other runs (e.g. a large firm count, where
vectorised code paths differ).

Use it around every optimisation: save on the code before, check on the code after.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def timeseries(
    scenario: str = "default", seed: int = 3, firms: int | None = None, months: int | None = None
) -> tuple[pd.DataFrame, str]:
    """The ``timeseries.parquet`` table of a run with its counterfactual, and its summary JSON."""
    from experiments.runner import run_scenario

    res = run_scenario(scenario, seed=seed, firms=firms, months=months)
    return res.timeseries, json.dumps(res.summary, indent=1, sort_keys=True, default=str)


def differences(ref: pd.DataFrame, new: pd.DataFrame, limit: int = 10) -> list[str]:
    """Human-readable differences between two tables; empty when identical bit for bit."""
    out: list[str] = []
    if list(ref.columns) != list(new.columns):
        return [f"columns differ: {list(ref.columns)} vs {list(new.columns)}"]
    if len(ref) != len(new):
        out.append(f"row counts differ: {len(ref)} vs {len(new)}")
        return out
    for col in ref.columns:
        a, b = ref[col], new[col]
        if str(a.dtype) != str(b.dtype):
            out.append(f"column {col!r}: dtype {a.dtype} vs {b.dtype}")
            continue
        if isinstance(a.dtype, pd.CategoricalDtype) or isinstance(b.dtype, pd.CategoricalDtype):
            a, b = a.astype(object), b.astype(object)
            bad = ~((a == b) | (a.isna() & b.isna()))
        elif col == "value":
            x, y = a.to_numpy(np.float64), b.to_numpy(np.float64)
            same = (x.view(np.int64) == y.view(np.int64)) | (np.isnan(x) & np.isnan(y))
            bad = pd.Series(~same, index=a.index)
        else:
            bad = a != b
        n_bad = int(bad.sum())
        if n_bad:
            rows = np.flatnonzero(bad.to_numpy())[:limit]
            out.append(f"column {col!r}: {n_bad} rows differ")
            for r in rows:
                out.append(f"  row {r}: {ref.iloc[r].to_dict()} -> {col}={new[col].iloc[r]!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.same_output", description=__doc__)
    ap.add_argument("action", choices=("save", "check"))
    ap.add_argument("path", help="reference Parquet file")
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--firms", type=int, default=None)
    ap.add_argument("--months", type=int, default=None)
    args = ap.parse_args(argv)
    df, summary = timeseries(args.scenario, args.seed, args.firms, args.months)
    path = Path(args.path)
    summary_path = path.with_suffix(".summary.json")
    if args.action == "save":
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        df.to_parquet(tmp, index=False)
        tmp.replace(path)
        summary_path.write_text(summary, encoding="utf-8")
        print(f"saved {len(df):,} rows to {path} and the summary to {summary_path}")
        return 0
    ref = pd.read_parquet(path)
    new = pd.read_parquet(_roundtrip(df))
    diffs = differences(ref, new)
    if summary_path.exists() and summary_path.read_text(encoding="utf-8") != summary:
        diffs.append(f"summary.json differs from {summary_path}")
    if diffs:
        print("\n".join(["DIFFERENT:", *diffs]))
        return 1
    print(f"identical: {len(df):,} rows, every column bit for bit, and the summary")
    return 0


def _roundtrip(df: pd.DataFrame):
    """The table as it reads back from Parquet (so both sides went through the same writer)."""
    import io

    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    buf.seek(0)
    return buf


if __name__ == "__main__":
    sys.exit(main())
