"""Data collection into a long, tidy table without per-row Python work.

Each month the model hands over blocks of values (one numpy array per variable, with the
dimension codes that apply); at the end the blocks are concatenated into one DataFrame whose
string columns are categoricals. Dimension columns that do not apply are null.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm.constants import COUNTRIES, GOODS, SECTORS, SEGMENTS, STAGES

UNITS = {
    "price": "US$/kg",
    "production_t": "t/month",
    "consumption_t": "t REO/month",
    "exports_t": "t/month",
    "imports_t": "t/month",
    "trade_t": "t/month",
    "leaked_t": "t/month",
    "export_quota_t": "t/yr",
    "china_share": "share",
    "import_share_from_china": "share",
    "inventory_months": "months of use",
    "stockpile_t": "t REO",
    "capacity_t_per_year": "t/yr",
    "construction_t_per_year": "t/yr",
    "idle_capacity_t_per_year": "t/yr",
    "bankruptcies": "firms (cumulative)",
    "recycled_t": "t REO/month",
    "intensity_index": "index (start = 1)",
    "perceived_risk": "probability-like 0..1",
    "lost_output_usd": "US$/month",
    "restriction": "share blocked 0..1",
    "revenue_usd": "US$/month",
    "budget_usd": "US$",
    "fill_rate": "share",
    "tension": "index",
    "concession": "0/1",
}
VARIABLES = tuple(UNITS)
_VAR_CODE = {v: i for i, v in enumerate(VARIABLES)}
UNIT_LIST = tuple(sorted(set(UNITS.values())))
_UNIT_CODE = {u: i for i, u in enumerate(UNIT_LIST)}


class Recorder:
    """Accumulates blocks of observations for one run."""

    def __init__(self, run: str, seed: int):
        self.run = run
        self.seed = seed
        self._blocks: list[tuple] = []

    def add(
        self,
        month: int,
        variable: str,
        values,
        *,
        country=-1,
        partner=-1,
        good=-1,
        stage=-1,
        segment=-1,
        sector=-1,
    ) -> None:
        """Add values of one variable; dimension arguments are scalars or arrays of codes."""
        v = np.atleast_1d(np.asarray(values, dtype=float)).ravel()
        n = v.size

        def col(x):
            a = np.asarray(x, dtype=np.int16)
            return np.broadcast_to(a.ravel() if a.ndim else a, (n,)).copy()

        self._blocks.append(
            (
                np.full(n, month, dtype=np.int32),
                np.full(n, _VAR_CODE[variable], dtype=np.int16),
                col(country),
                col(partner),
                col(good),
                col(stage),
                col(segment),
                col(sector),
                v,
            )
        )

    def frame(self, dates: list[str]) -> pd.DataFrame:
        """The long table: run, seed, date, variable, value, unit and dimension columns.

        Args:
            dates: 'YYYY-MM' of each month index; ``date`` is the first day of the month.
        """
        if not self._blocks:
            cols = [np.zeros(0, dtype=np.int32)] + [np.zeros(0, dtype=np.int16)] * 7 + [np.zeros(0)]
        else:
            cols = [np.concatenate(parts) for parts in zip(*self._blocks, strict=True)]
        month, var, country, partner, good, stage, segment, sector, value = cols

        def cat(codes, names):
            return pd.Categorical.from_codes(codes.astype(int), categories=list(names))

        unit_codes = np.array([_UNIT_CODE[UNITS[v]] for v in VARIABLES], dtype=np.int16)[var]
        n = value.size
        df = pd.DataFrame(
            {
                "run": pd.Categorical([self.run] * n, categories=["scenario", "counterfactual"])
                if self.run in ("scenario", "counterfactual")
                else pd.Categorical([self.run] * n),
                "seed": np.full(n, self.seed, dtype=np.int64),
                "date": np.asarray(dates, dtype="datetime64[M]")[month].astype("datetime64[ms]"),
                "variable": cat(var, VARIABLES),
                "value": value,
                "unit": cat(unit_codes, UNIT_LIST),
                "country": cat(country, COUNTRIES),
                "partner": cat(partner, COUNTRIES),
                "good": cat(good, GOODS),
                "stage": cat(stage, (*STAGES, "recycling")),
                "segment": cat(segment, SEGMENTS),
                "sector": cat(sector, SECTORS),
            }
        )
        return df
