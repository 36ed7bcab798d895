"""Data collection into a long, tidy table without per-row Python work.

Each month the model hands over blocks of values (one numpy array per variable, with the
dimension codes that apply); at the end the blocks are concatenated into one DataFrame whose
string columns are categoricals. Dimension columns that do not apply are null.
"""

from __future__ import annotations

import functools

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
_F64 = np.dtype(np.float64)  # the native float64 dtype: arrays' dtype is this very object


@functools.lru_cache(maxsize=64)
def _dtype(names: tuple[str, ...]) -> pd.CategoricalDtype:
    """The categorical type of a column, built once per set of names.

    Building the categories is the slow part of a small table (one month's rows in the
    explorer).
    """
    return pd.CategoricalDtype(categories=list(names))


def dims(*, country=-1, partner=-1, good=-1, stage=-1, segment=-1, sector=-1) -> tuple:
    """The dimension codes of a block as :meth:`Recorder.add_block` takes them (see ``add``)."""
    return (country, partner, good, stage, segment, sector)


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
        """Add values of one variable; dimension arguments are scalars or arrays of codes.

        Blocks are only stored here; columns are built once, vectorised, in :meth:`frame`.
        """
        if type(values) is np.ndarray and values.dtype is _F64 and values.ndim == 1:
            v = values  # what asarray and reshape would give (the same data), without the calls
        else:
            v = np.asarray(values, dtype=float).reshape(-1)
        self._blocks.append(
            (month, _VAR_CODE[variable], (country, partner, good, stage, segment, sector), v)
        )

    def add_block(self, month: int, variable: str, values, block_dims: tuple) -> None:
        """:meth:`add` with the dimension codes made once by :func:`dims`.

        Most blocks have the same dimensions every month: passing them as one tuple saves
        building it from keyword arguments at every call (about 20 calls a month).
        """
        if type(values) is np.ndarray and values.dtype is _F64 and values.ndim == 1:
            v = values
        else:
            v = np.asarray(values, dtype=float).reshape(-1)
        self._blocks.append((month, _VAR_CODE[variable], block_dims, v))

    def frame(self, dates: list[str]) -> pd.DataFrame:
        """The long table: run, seed, date, variable, value, unit and dimension columns.

        Args:
            dates: 'YYYY-MM' of each month index; ``date`` is the first day of the month.
        """
        sizes = np.array([b[3].size for b in self._blocks], dtype=np.int64)
        n = int(sizes.sum())
        value = np.concatenate([b[3] for b in self._blocks]) if self._blocks else np.zeros(0)
        month = np.repeat(np.array([b[0] for b in self._blocks], dtype=np.int32), sizes)
        var = np.repeat(np.array([b[1] for b in self._blocks], dtype=np.int16), sizes)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if self._blocks else sizes
        dims = []
        for d in range(6):
            entries = [b[2][d] for b in self._blocks]
            # most codes are Python ints (tested by type: np.ndim costs a call per block);
            # the rest are numpy scalars or arrays of codes, one per value of their block
            blocks = [k for k, e in enumerate(entries) if type(e) is not int and np.ndim(e) != 0]
            for k in blocks:
                entries[k] = -1
            col = np.repeat(np.array(entries, dtype=np.int16), sizes)
            for k in blocks:
                e = self._blocks[k][2][d]
                col[starts[k] : starts[k] + sizes[k]] = np.asarray(e).reshape(-1)
            dims.append(col)
        country, partner, good, stage, segment, sector = dims

        def cat(codes, names):
            return pd.Categorical.from_codes(codes.astype(int), dtype=_dtype(tuple(names)))

        unit_codes = np.array([_UNIT_CODE[UNITS[v]] for v in VARIABLES], dtype=np.int16)[var]
        runs = ["scenario", "counterfactual"]
        if self.run not in runs:
            runs.append(self.run)
        df = pd.DataFrame(
            {
                "run": pd.Categorical.from_codes(
                    np.full(n, runs.index(self.run), dtype=np.int8), dtype=_dtype(tuple(runs))
                ),
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
