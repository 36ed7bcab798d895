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
    "price": (2880, 268017.73924713425),
    "production_t": (2304, 2867485.149519654),
    "consumption_t": (864, 1056195.5211326133),
    "exports_t": (2304, 464929.4637196866),
    "imports_t": (2304, 464929.4637196866),
    "trade_t": (3719, 464929.4637196866),
    "china_share": (108, 93.0768906008805),
    "import_share_from_china": (208, 115.55967541724435),
    "inventory_months": (756, 2871.4740214087683),
    "stockpile_t": (864, 240608.54269484506),
    "capacity_t_per_year": (1152, 40730793.40837479),
    "construction_t_per_year": (1152, 3220837.003411428),
    "idle_capacity_t_per_year": (1152, 714000.0),
    "bankruptcies": (288, 0.0),
    "recycled_t": (864, 19587.96992004019),
    "intensity_index": (756, 736.0170560564453),
    "perceived_risk": (2016, 107.41456182312523),
    "lost_output_usd": (1440, 489775630.6227054),
    "restriction": (48, 27.599999999999998),
    "revenue_usd": (288, 59154825801.967285),
    "budget_usd": (288, 2484821859199.6387),
    "fill_rate": (864, 729.582933529337),
    "tension": (24, 11.0),
    "concession": (24, 13.0),
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
