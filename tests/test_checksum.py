"""Pinned output of a short run: speed work must not change results.

Per variable: the number of rows and the sum of absolute values of a 36-month default run
(150 firms, seed 3), compared at a relative tolerance of 1e-9 so that only last-bit floating
point differences between processors pass. If a change of behaviour is intended, regenerate
``EXPECTED`` in the same commit and say why in the commit message.
"""

from __future__ import annotations

import pytest

from abm.model import RareEarthModel
from abm.scenario import load_scenario

EXPECTED = {
    "price": (2880, 541711.05537465),
    "production_t": (2304, 2751253.251030715),
    "consumption_t": (864, 858310.8824742937),
    "exports_t": (2304, 192251.12735398774),
    "imports_t": (2304, 192251.12735398777),
    "trade_t": (2624, 192251.12735398774),
    "china_share": (108, 89.65482601829954),
    "import_share_from_china": (171, 67.32136628270523),
    "inventory_months": (756, 924.0387408682614),
    "stockpile_t": (864, 16345.78681112926),
    "capacity_t_per_year": (1152, 39277144.98353142),
    "construction_t_per_year": (1152, 8576398.119514193),
    "idle_capacity_t_per_year": (1152, 0.0),
    "bankruptcies": (288, 0.0),
    "recycled_t": (864, 19561.715768526035),
    "intensity_index": (756, 717.1225552657068),
    "perceived_risk": (2016, 28.100882934017868),
    "lost_output_usd": (1440, 29489466493.93389),
    "restriction": (1, 0.8),
    "revenue_usd": (288, 122260270343.58154),
    "budget_usd": (288, 2480739297345.8574),
    "fill_rate": (864, 662.7809468900412),
    "tension": (24, 0.0),
    "concession": (24, 24.0),
}


def test_short_run_output_is_pinned():
    model = RareEarthModel(load_scenario("default", months=36, firms=150, seed=3))
    model.run()
    df = model.recorder.frame(model.dates)
    got = df.groupby("variable", observed=True)["value"]
    assert set(got.groups) == set(EXPECTED)
    for variable, (rows, total) in EXPECTED.items():
        values = got.get_group(variable)
        assert len(values) == rows, variable
        assert float(values.abs().sum()) == pytest.approx(total, rel=1e-9), variable
