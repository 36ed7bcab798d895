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
    "price": (2880, 573202.7690422096),
    "production_t": (2304, 2749061.8368740776),
    "consumption_t": (864, 839803.0044093678),
    "exports_t": (2304, 182388.75886227327),
    "imports_t": (2304, 182388.75886227327),
    "trade_t": (2557, 182388.75886227327),
    "china_share": (108, 89.67430095305501),
    "import_share_from_china": (173, 60.28323368223048),
    "inventory_months": (756, 912.4236123350297),
    "stockpile_t": (864, 16375.665490774407),
    "capacity_t_per_year": (1152, 39277144.85240552),
    "construction_t_per_year": (1152, 8554049.651501482),
    "idle_capacity_t_per_year": (1152, 0.0),
    "bankruptcies": (288, 0.0),
    "recycled_t": (864, 19561.715768526035),
    "intensity_index": (756, 705.9233022237868),
    "perceived_risk": (2016, 45.59087356760014),
    "lost_output_usd": (1440, 30610437549.16487),
    "restriction": (2, 1.6),
    "revenue_usd": (288, 130153338939.93486),
    "budget_usd": (288, 2479323071045.988),
    "fill_rate": (864, 652.5844506636176),
    "tension": (24, 1.0),
    "concession": (24, 23.0),
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
