"""A short pattern check of history-2010 (two seeds), so CI catches a calibration regression.

Pattern 5 does not pass yet (its 2012 H1 check; docs/CALIBRATION.md says why); the test holds
the ones that do and the plausibility checks (world output, Japan's total imports in 2011 and
2012 H1), and checks that the statistics come from the time series of any run.
"""

from __future__ import annotations

import numpy as np

from experiments.patterns import PATTERNS, evaluate, run_patterns, simulate_history

PASSING_NOW = {1, 2, 3, 4, 6, 7}


def test_patterns_that_pass_keep_passing():
    res, frames = run_patterns(seeds=2, workers=1)
    assert len(frames) == 2
    by_pattern = res[res["pattern"] > 0].groupby("pattern")["pass"].all()
    assert set(by_pattern.index) == {p.number for p in PATTERNS}
    failing = sorted(p for p in PASSING_NOW if not by_pattern[p])
    assert failing == [], res[res["pattern"].isin(failing)].to_string()
    plausible = res[res["pattern"] == 0]
    assert plausible["pass"].all(), plausible.to_string()


def test_statistics_are_read_from_the_time_series_alone():
    df = simulate_history(1)
    a = evaluate([df])
    b = evaluate([df.sample(frac=1.0, random_state=0)])  # row order must not matter
    # (beyond the last bits of a sum: shuffled rows add in another order)
    x, y = a["model_median"].to_numpy(float), b["model_median"].to_numpy(float)
    assert np.array_equal(np.isnan(x), np.isnan(y))
    assert np.allclose(x, y, rtol=1e-12, atol=0.0, equal_nan=True)


def test_japan_imports_statistic_counts_concentrate_and_oxide_from_everyone():
    import pandas as pd

    from abm.outcomes import series
    from experiments.patterns import stat_japan_imports

    df = simulate_history(1)
    # every exporter's concentrate and oxide to Japan, from the trade matrix
    trade = series(df, "trade_t", partner="Japan", stage=["concentrate", "oxide"])
    idx = pd.DatetimeIndex(trade.index)
    h1 = trade[(idx.year == 2012) & (idx.month <= 6)].sum()
    assert h1 > 0
    assert abs(stat_japan_imports(df, 2012, range(1, 7)) - h1) <= 1e-6 * h1
    # magnets are not in the customs series of rare-earth raw materials: leaving them out matters
    everything = series(df, "imports_t", country="Japan")
    assert everything[pd.DatetimeIndex(everything.index).year == 2011].sum() > stat_japan_imports(
        df, 2011
    )
