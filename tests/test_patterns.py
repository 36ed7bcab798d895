"""A short pattern check of history-2010 (two seeds), so CI catches a calibration regression.

Pattern 5 does not pass yet (its 2012 H1 check; docs/CALIBRATION.md says why); the test holds
the ones that do and the world-output plausibility checks, and checks that the statistics come
from the time series of any run.
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
