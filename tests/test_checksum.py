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
    "price": (2880, 475505.0736333677),
    "production_t": (2304, 2723097.5922390064),
    "consumption_t": (864, 830494.6600462908),
    "exports_t": (2304, 170017.03145193882),
    "imports_t": (2304, 170017.03145193882),
    "trade_t": (2283, 170017.03145193882),
    "china_share": (108, 89.90587706853432),
    "import_share_from_china": (166, 61.371535799372076),
    "inventory_months": (756, 826.3309576353374),
    "stockpile_t": (864, 18864.583432058294),
    "capacity_t_per_year": (1152, 39277859.71273948),
    "construction_t_per_year": (1152, 8531362.383300805),
    "idle_capacity_t_per_year": (1152, 48500.0),
    "bankruptcies": (288, 0.0),
    "recycled_t": (864, 19561.715768526035),
    "intensity_index": (756, 710.2725851823473),
    "perceived_risk": (2016, 45.59087356760014),
    "lost_output_usd": (1440, 32391693499.40788),
    "restriction": (2, 1.6),
    "revenue_usd": (288, 126544619835.65393),
    "budget_usd": (288, 2477667584573.9795),
    "fill_rate": (864, 665.7281085529831),
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
