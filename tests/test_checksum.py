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
    "price": (2880, 281515.8167927923),
    "production_t": (2304, 2842833.294651182),
    "consumption_t": (864, 1041105.3972530216),
    "exports_t": (2304, 437653.44520173175),
    "imports_t": (2304, 437653.44520173175),
    "trade_t": (3032, 437653.44520173175),
    "china_share": (108, 93.08725934494477),
    "import_share_from_china": (177, 89.62817311095267),
    "inventory_months": (756, 2208.2916585220764),
    "stockpile_t": (864, 543696.4334129421),
    "capacity_t_per_year": (1152, 40730823.88919179),
    "construction_t_per_year": (1152, 3263536.4579808936),
    "idle_capacity_t_per_year": (1152, 646000.0),
    "bankruptcies": (288, 0.0),
    "recycled_t": (864, 19587.96992004019),
    "intensity_index": (756, 737.5768651175406),
    "perceived_risk": (2016, 94.25695833676666),
    "lost_output_usd": (1440, 5690184756.689767),
    "restriction": (20, 12.4),
    "revenue_usd": (288, 61520209513.392654),
    "budget_usd": (288, 2484967423174.275),
    "fill_rate": (864, 723.7977452530906),
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
