"""Shared fixtures: scenario files written into ``tmp_path`` and small helpers for tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

DIMENSIONS = ["country", "partner", "good", "stage", "segment", "sector"]
REQUIRED_COLUMNS = ["run", "seed", "date", "variable", "value", "unit", *DIMENSIONS]


@pytest.fixture
def scenario_file(tmp_path):
    """Write a scenario TOML into ``tmp_path`` and return its path as text.

    ``scenario_file(body)`` extends ``baseline-2025`` by default; pass ``extends=None`` for a
    stand-alone file and ``filename=`` to write several files.
    """

    def write(
        body: str = "",
        *,
        extends: str | None = "baseline-2025",
        name: str | None = "test-scenario",
        filename: str = "scenario.toml",
    ) -> str:
        head = ""
        if extends is not None:
            head += f'extends = "{extends}"\n'
        if name is not None:
            head += f'name = "{name}"\n'
        path = Path(tmp_path) / filename
        path.write_text(head + body, encoding="utf-8")
        return str(path)

    return write


def sorted_table(df: pd.DataFrame) -> pd.DataFrame:
    """A time series table in a canonical row order and plain dtypes (to compare two runs).

    Categorical columns become text with "" for null, so ``DataFrame.equals`` compares values
    whatever the categories and however the rows were ordered.
    """
    keys = ["run", "date", "variable", *DIMENSIONS]
    out = df.copy()
    for col in ("run", "variable", "unit", *DIMENSIONS):
        out[col] = out[col].astype("string").fillna("").astype(object)
    return out[REQUIRED_COLUMNS].sort_values(keys, kind="mergesort").reset_index(drop=True)


@pytest.fixture
def canonical():
    """:func:`sorted_table` as a fixture (test modules do not import each other)."""
    return sorted_table
