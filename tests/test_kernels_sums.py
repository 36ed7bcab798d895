"""Kernels that add up as numpy does give numpy's sums bit for bit, on awkward inputs too.

``abm.kernels.collect.firm_totals`` reproduces ``np.add.reduceat`` along axis 0 (numpy's
pairwise blocks) and ``np.bincount``; ``abm.kernels.learn`` the order of
``np.einsum("ni,ni->n")`` where its probe says so. Values spanning many magnitudes make any
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
def test_firm_totals_add_as_reduceat_and_bincount(seed):
    from abm.kernels import collect

    rng = np.random.default_rng(seed)
    row0, col0, n_c = 37, 3, 8
    lengths = rng.choice([1, 2, 7, 8, 9, 16, 127, 128, 129, 256, 300, 1000, 4099], size=6)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.intp)
    cs = np.sort(rng.choice(n_c, size=starts.size, replace=False)).astype(np.intp)
    stock = _values(rng, (row0 + int(lengths.sum()), 8))
    stock[row0 + starts[1] : row0 + starts[2]] = -0.0  # a block of negative zeros keeps its sign
    p = row0
    capacity = _values(rng, p)
    active, idle = rng.random(p) < 0.7, rng.random(p) < 0.3
    proj_size = _values(rng, p)
    key = rng.integers(0, 4 * n_c, p)
    held, online, building, idled = collect.firm_totals(
        stock, row0, col0, cs, starts, n_c, capacity, active, idle, proj_size, key, 4 * n_c
    )
    want = np.zeros((n_c, 8 - col0))
    want[cs] = np.add.reduceat(stock[row0:, col0:], starts, axis=0)
    cap = capacity * active
    for got, ref in (
        (held, want),
        (online, np.bincount(key, weights=cap, minlength=4 * n_c)),
        (building, np.bincount(key, weights=proj_size, minlength=4 * n_c)),
        (idled, np.bincount(key, weights=cap * idle, minlength=4 * n_c)),
    ):
        assert np.array_equal(got, ref)
        assert np.array_equal(np.signbit(got), np.signbit(ref))


def test_einsum_probe_agrees_with_numpy_here():
    from abm.kernels import learn

    rng = np.random.default_rng(9)
    a, b = _values(rng, (5000, 8)), _values(rng, (5000, 8))
    same = np.array_equal(np.einsum("ni,ni->n", a, b), learn._dot8_rows(a, b))
    assert learn.einsum_order() == same


def test_numpy_sums_where_the_probes_fail(monkeypatch):
    """Where numpy adds in another order than the kernels, numpy adds: the same results."""
    from abm.kernels import collect, learn
    from abm.model import RareEarthModel
    from abm.scenario import load_scenario

    monkeypatch.setattr(collect, "reduceat_order", lambda: False)
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
