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
    "price": (2880, 259517.0631930353),
    "production_t": (2304, 2855973.4865228226),
    "consumption_t": (864, 1060553.6159734693),
    "exports_t": (2304, 451892.7382503244),
    "imports_t": (2304, 451892.7382503244),
    "trade_t": (3193, 451892.73825032444),
    "china_share": (108, 92.92876742721045),
    "import_share_from_china": (188, 107.65137199192259),
    "inventory_months": (756, 2851.751631162111),
    "stockpile_t": (864, 246475.15814096213),
    "capacity_t_per_year": (1152, 40730825.63217284),
    "construction_t_per_year": (1152, 3236793.4155467083),
    "idle_capacity_t_per_year": (1152, 714000.0),
    "bankruptcies": (288, 0.0),
    "recycled_t": (864, 19587.96992004019),
    "intensity_index": (756, 735.1827571006107),
    "perceived_risk": (2016, 118.17723676334052),
    "lost_output_usd": (1440, 24494543.495143723),
    "restriction": (90, 50.39999999999999),
    "revenue_usd": (288, 56762683791.66337),
    "budget_usd": (288, 2475970663977.38),
    "fill_rate": (864, 760.0736298589472),
    "tension": (24, 18.0),
    "concession": (24, 0.0),
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
