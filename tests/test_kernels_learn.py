"""The learning kernel's rare branches give the numpy code's results bit for bit.

The scenario runs of ``tests/test_engine.py`` seldom reach bankruptcy, restarts or learning by
doing past a year at capacity; here one month's producer learning runs on two copies of a world
pushed into those branches, once by the numpy code and once by the kernel.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from abm.engine import numba_available
from abm.model import RareEarthModel
from abm.scenario import load_scenario

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba is not installed")

MODEL_ARRAYS = ("restart_due", "bankruptcies", "_op_margin", "_cum_units", "_cost0", "exp_price")


def _stressed(name: str) -> RareEarthModel:
    """A world 6 months in whose producers are about to go bankrupt, restart and learn."""
    model = RareEarthModel(load_scenario(name, firms=2_500, months=24), engine="numba")
    for _ in range(6):
        model.step()
    f, p = model.firms, model.P
    rng = np.random.default_rng(7)
    rows = rng.random(p)
    f.cash[:p] = np.where(rows < 0.2, -1e15, f.cash[:p])  # deep in debt and losing money
    f.unit_cost[:p] = np.where(rows < 0.2, 1e3 * f.unit_cost[:p], f.unit_cost[:p])
    f.loss_months[:p] = np.where(rows < 0.3, 60, f.loss_months[:p])
    f.idle[:p] |= (rows > 0.5) & (rows < 0.8)  # idle plants that may restart
    f.proj_size[:p] = np.where(rows > 0.9, 100.0, f.proj_size[:p])
    model._entrant[:p] = True
    model._cum_units[:p] = np.where(rows > 0.4, 2.0 * f.capacity[:p], model._cum_units[:p])
    model._units = np.where(rows > 0.1, 1.0 + rows, 0.0)
    return model


@pytest.mark.parametrize("numpy_sum", [False, True])
@pytest.mark.parametrize("name", ["history-2010", "default", "price-floor"])
def test_producer_learning_kernel_matches_numpy(name, numpy_sum, monkeypatch):
    if numpy_sum:  # as on a numpy build whose einsum adds in another order than the kernel
        from abm.kernels import learn

        monkeypatch.setattr(learn, "einsum_order", lambda: False)
    model = _stressed(name)
    a, b = model.fork(), model.fork()
    a._k = None
    a.fb = b.fb = dataclasses.replace(model.fb, learning_rate=0.15)
    a._learn_producers()
    b._learn_producers_fused()
    assert a.bankruptcies.sum() > 0 and a.restart_due.sum() > 0  # the branches were taken
    assert (a._cost0[: a.P] > 0).any()
    for field in dataclasses.fields(a.firms):
        va, vb = getattr(a.firms, field.name), getattr(b.firms, field.name)
        if isinstance(va, np.ndarray):
            assert np.array_equal(va, vb, equal_nan=True), field.name
    for key in MODEL_ARRAYS:
        assert np.array_equal(getattr(a, key), getattr(b, key), equal_nan=True), key
    assert a.external_in == b.external_in
