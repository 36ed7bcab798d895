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
    "price": (2880, 281781.1257427022),
    "production_t": (2304, 2834655.0413917135),
    "consumption_t": (864, 1040576.6887856672),
    "exports_t": (2304, 436710.3725606605),
    "imports_t": (2304, 436710.3725606605),
    "trade_t": (3034, 436710.3725606605),
    "china_share": (108, 93.04334287350575),
    "import_share_from_china": (177, 89.53629786867452),
    "inventory_months": (756, 2202.178759762448),
    "stockpile_t": (864, 543520.816654215),
    "capacity_t_per_year": (1152, 40526460.4876752),
    "construction_t_per_year": (1152, 2869907.312354992),
    "idle_capacity_t_per_year": (1152, 612000.0),
    "bankruptcies": (288, 0.0),
    "recycled_t": (864, 19587.96992004019),
    "intensity_index": (756, 737.568654315692),
    "perceived_risk": (2016, 94.25695833676666),
    "lost_output_usd": (1440, 5702221722.7997875),
    "restriction": (20, 12.4),
    "revenue_usd": (288, 61471649515.013084),
    "budget_usd": (288, 2484975306893.4424),
    "fill_rate": (864, 722.4692362563676),
    "tension": (24, 7.0),
    "concession": (24, 17.0),
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
