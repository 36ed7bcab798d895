"""Kernels that add up as numpy does give numpy's sums bit for bit, on awkward inputs too.

``abm.kernels.collect.capacity_totals`` reproduces ``np.bincount``; ``abm.kernels.learn`` the
order of ``np.einsum("ni,ni->n")`` where its probe says so. Values spanning many magnitudes make any
other order of addition show.
"""

from __future__ import annotations

import numpy as np
import pytest

from abm.engine import numba_available

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba is not installed")


def _values(rng, shape):
    return rng.standard_normal(shape) * np.exp(5 * rng.standard_normal(shape))


@pytest.mark.parametrize("seed", range(4))
def test_capacity_totals_add_as_bincount(seed):
    from abm.kernels import collect

    rng = np.random.default_rng(seed)
    p, n_key = 3000, 32
    capacity, proj_size = _values(rng, p), _values(rng, p)
    capacity[:50] = -0.0  # negative zeros keep their sign where numpy's sums keep it
    active, idle = rng.random(p) < 0.7, rng.random(p) < 0.3
    key = rng.integers(0, n_key, p)
    got = collect.capacity_totals(capacity, active, idle, proj_size, key, n_key)
    cap = capacity * active
    want = (
        np.bincount(key, weights=cap, minlength=n_key),
        np.bincount(key, weights=proj_size, minlength=n_key),
        np.bincount(key, weights=cap * idle, minlength=n_key),
    )
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w)
        assert np.array_equal(np.signbit(g), np.signbit(w))


def test_einsum_probe_agrees_with_numpy_here():
    from abm.kernels import learn

    rng = np.random.default_rng(9)
    a, b = _values(rng, (5000, 8)), _values(rng, (5000, 8))
    same = np.array_equal(np.einsum("ni,ni->n", a, b), learn._dot8_rows(a, b))
    assert learn.einsum_order() == same


def test_numpy_sums_where_the_probes_fail(monkeypatch):
    """Where numpy's einsum adds in another order than the kernel, numpy adds: the same results."""
    from abm.kernels import learn
    from abm.model import RareEarthModel
    from abm.scenario import load_scenario

    monkeypatch.setattr(learn, "einsum_order", lambda: False)
    runs = []
    for engine in ("numpy", "numba"):
        model = RareEarthModel(load_scenario("history-2010", firms=2_500, months=8), engine=engine)
        while model.running and model.month < model.horizon:
            model.step()
        runs.append(model)
    a, b = runs
    assert a.recorder.frame(a.dates).equals(b.recorder.frame(b.dates))
    assert np.array_equal(a.firms.expected_margin, b.firms.expected_margin)
