"""The numba engine gives the numpy engine's results bit for bit (abm.engine).

Each scenario shipped runs twice from the same seed, once per engine, at a firm count above the
``auto`` threshold (where vectorised paths differ from the default size): the long table, every
firm array and the states' books must be identical. Speed is measured in ``benchmarks/``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from abm.engine import AUTO_MIN_FIRMS, ENGINE_ENV, EngineError, numba_available, resolve
from abm.model import ConservationError, RareEarthModel
from abm.scenario import load_scenario

needs_numba = pytest.mark.skipif(not numba_available(), reason="numba is not installed")

SCENARIOS = [
    "default",
    "history-2010",
    "baseline-2025",
    "taiwan-crisis",
    "price-floor",
    "deep-sea-mud",
    "us-japan-framework",
]


def _run(name: str, engine: str, firms: int, months: int) -> RareEarthModel:
    model = RareEarthModel(load_scenario(name, firms=firms, months=months), engine=engine)
    assert model.engine == engine
    while model.running and model.month < model.horizon:
        model.step()
    return model


def _firm_arrays(model: RareEarthModel) -> dict[str, np.ndarray]:
    out = {
        f.name: getattr(model.firms, f.name)
        for f in dataclasses.fields(model.firms)
        if isinstance(getattr(model.firms, f.name), np.ndarray)
    }
    assert len(out) > 20  # the population's arrays, not an empty comparison
    return out


@needs_numba
@pytest.mark.parametrize("name", SCENARIOS)
def test_numba_engine_gives_identical_results(name):
    firms, months = 2_500, 40
    a = _run(name, "numpy", firms, months)
    b = _run(name, "numba", firms, months)
    fa, fb = a.recorder.frame(a.dates), b.recorder.frame(b.dates)
    assert len(fa) > 0
    assert fa.equals(fb)
    arrays_b = _firm_arrays(b)
    differ = [
        k for k, v in _firm_arrays(a).items() if not np.array_equal(v, arrays_b[k], equal_nan=True)
    ]
    assert differ == []
    for sa, sb in zip(a.states, b.states, strict=True):
        assert sa.budget_usd == sb.budget_usd
        assert np.array_equal(sa.stockpile_t, sb.stockpile_t)
    assert np.array_equal(a.price, b.price)


def test_auto_compiles_only_from_the_threshold(monkeypatch):
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    assert resolve(None, AUTO_MIN_FIRMS - 1) == "numpy"
    assert resolve("auto", AUTO_MIN_FIRMS) == ("numba" if numba_available() else "numpy")
    assert resolve("NumPy", 10**6) == "numpy"
    monkeypatch.setenv(ENGINE_ENV, "numpy")
    assert resolve(None, 10**6) == "numpy"


def test_unknown_engine_is_a_clear_error(monkeypatch):
    with pytest.raises(EngineError, match=r"^engine: 'fortran' is not one of auto, numpy, numba$"):
        resolve("fortran", 10)
    monkeypatch.setenv(ENGINE_ENV, "gpu")
    with pytest.raises(EngineError, match=rf"^{ENGINE_ENV}: 'gpu' is not one of"):
        resolve(None, 10)


def test_default_size_never_imports_numba(monkeypatch):
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    model = RareEarthModel(load_scenario("default", months=2))
    assert model.engine == "numpy" and model._k is None


def _stepped(engine: str) -> RareEarthModel:
    model = RareEarthModel(load_scenario("baseline-2025", months=12, firms=120), engine=engine)
    model.step()
    return model


def _negative_producer(model):
    seller = int(np.flatnonzero(model.firms.stock[: model.P, 0] > 0)[0])
    model.firms.stock[seller, 0] = -1e6


def _negative_maker(model):
    model.firms.stock[model.P + 3, 4] = -1e6


def _cash_gift(model):
    original = model._check_goods

    def with_a_gift(*args):
        model.firms.cash[0] += 1e9
        return original(*args)

    model._check_goods = with_a_gift


def _oxide_gift(model):
    original = model._check_goods

    def with_extra_oxide(after, expected, before):
        model.firms.stock[0, 3] += 100.0
        return original(model._holdings(), expected, before)

    model._check_goods = with_extra_oxide


@needs_numba
@pytest.mark.parametrize("breach", [_negative_producer, _negative_maker, _cash_gift, _oxide_gift])
def test_settlement_raises_the_same_conservation_errors_on_both_engines(breach):
    messages = []
    for engine in ("numpy", "numba"):
        model = _stepped(engine)
        breach(model)
        with pytest.raises(ConservationError) as err:
            model.step()
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert messages[0].startswith(("negative stock in", "money not", "goods not"))


@needs_numba
def test_settlement_kernels_are_used_where_they_add_as_numpy_does(monkeypatch):
    from abm.engine import kernels

    settle = kernels().settle
    if not settle.matches_numpy():  # another numpy build: settlement runs numpy's code
        pytest.skip("numpy's row sums or einsum add in another order here")
    calls = []
    for name in ("producer_trade", "maker_settle", "producer_close", "expect_sales"):
        fn = getattr(settle, name)
        monkeypatch.setattr(settle, name, lambda *a, _fn=fn, _n=name: calls.append(_n) or _fn(*a))
    _stepped("numba")
    assert calls == ["producer_trade", "maker_settle", "producer_close", "expect_sales"]
