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
    "price": (2880, np.float64(475505.0736333677)),
    "production_t": (2304, np.float64(2723097.5922390064)),
    "consumption_t": (864, np.float64(830494.6600462908)),
    "exports_t": (2304, np.float64(170017.03145193882)),
    "imports_t": (2304, np.float64(170017.03145193882)),
    "trade_t": (2283, np.float64(170017.03145193882)),
    "china_share": (108, np.float64(89.90587706853432)),
    "import_share_from_china": (166, np.float64(61.371535799372076)),
    "inventory_months": (756, np.float64(826.3309576353374)),
    "stockpile_t": (864, np.float64(18864.583432058294)),
    "capacity_t_per_year": (1152, np.float64(39277859.71273948)),
    "construction_t_per_year": (1152, np.float64(8531362.383300805)),
    "idle_capacity_t_per_year": (1152, np.float64(48500.0)),
    "bankruptcies": (288, np.float64(0.0)),
    "recycled_t": (864, np.float64(19561.715768526035)),
    "intensity_index": (756, np.float64(710.2725851823473)),
    "perceived_risk": (2016, np.float64(45.59087356760014)),
    "lost_output_usd": (1440, np.float64(32391693499.40788)),
    "restriction": (2, np.float64(1.6)),
    "revenue_usd": (288, np.float64(126544619835.65393)),
    "budget_usd": (288, np.float64(2477667584573.9795)),
    "fill_rate": (864, np.float64(665.7281085529831)),
    "tension": (24, np.float64(1.0)),
    "concession": (24, np.float64(23.0)),
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
