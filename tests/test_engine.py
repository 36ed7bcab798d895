"""The numba engine gives the numpy engine's results bit for bit (abm.engine).

Each scenario shipped runs twice from the same seed, once per engine chosen by name, at 2,500
firms (large enough that every country holds firms of every kind): the long table, every firm
array and the states' books must be identical. The kernels' sums are also checked against
numpy's on random inputs of many lengths. Speed is measured in ``benchmarks/``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from abm.engine import AUTO_MIN_FIRMS, ENGINE_ENV, EngineError, kernels, numba_available, resolve
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


def _run(
    name: str, engine: str, firms: int, months: int, overrides: list[str] | None = None
) -> RareEarthModel:
    scn = load_scenario(name, overrides or [], firms=firms, months=months)
    model = RareEarthModel(scn, engine=engine)
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


@needs_numba
def test_pairwise_sum_is_numpys_sum():
    from abm.kernels.common import pairwise_sum

    rng = np.random.default_rng(7)
    for n in [*range(1, 140), 255, 256, 257, 512, 1000, 4099]:
        a = rng.standard_normal(n) * 10.0 ** rng.integers(-6, 6, n)
        assert pairwise_sum(a, 0, n) == a.sum()
        assert pairwise_sum(a, 1, n - 1) == a[1:].sum()
    f = rng.standard_normal((8, 8, 8)) * 10.0 ** rng.integers(-6, 6, (8, 8, 8))
    rows = f.sum(axis=2)
    assert all(
        pairwise_sum(f.ravel(), k * 64 + x * 8, 8) == rows[k, x] for k in range(8) for x in range(8)
    )


@needs_numba
@pytest.mark.parametrize("same", [True, False])
def test_export_rounds_kernel_matches_numpy(same):
    from abm.market import _export_rounds

    rng = np.random.default_rng(11)
    k, n = 8, 8
    for _ in range(20):
        m_rem = rng.uniform(0, 100, (k, n)) * (rng.uniform(size=(k, n)) > 0.2)
        e_rem = rng.uniform(0, 80, (k, n)) * (rng.uniform(size=(k, n)) > 0.3)
        s_left = e_rem if same else e_rem + rng.uniform(0, 20, (k, n))
        cap = np.where(rng.uniform(size=(k, n, n)) > 0.7, rng.uniform(0, 30, (k, n, n)), np.inf)
        cap[:, range(n), range(n)] = 0.0
        pref = rng.uniform(0.2, 1.0, (k, n, n))
        a = [m_rem.copy(), e_rem.copy(), None, cap.copy(), np.zeros((k, n, n)), pref]
        a[2] = a[1] if same else s_left.copy()
        b = [m_rem.copy(), e_rem.copy(), None, cap.copy(), np.zeros((k, n, n)), pref]
        b[2] = b[1] if same else s_left.copy()
        _export_rounds(*a, 6)
        kernels().market.export_rounds(b[0], b[1], b[2], same, b[3], b[4], b[5], 6)
        assert a[4].sum() > 0  # something traded
        for x, y in zip(a[1:5], b[1:5], strict=True):
            assert np.array_equal(x, y)


@needs_numba
@pytest.mark.parametrize("home_bias", [1.0, 0.4, 0.0])
@pytest.mark.parametrize("rules", ["open", "quota", "embargo_tax"])
def test_clear_items_kernel_matches_numpy(home_bias, rules):
    from abm.market import Contracts, clear_items

    rng = np.random.default_rng(5)
    k, n = 8, 8
    for trial in range(6):
        supply = rng.uniform(0, 100, (k, n)) * (rng.uniform(size=(k, n)) > 0.25)
        demand = rng.uniform(0, 150, (k, n)) * (rng.uniform(size=(k, n)) > 0.2)
        price = rng.uniform(5, 500, (k, n))
        quota = np.full((k, n), np.inf)
        access = np.ones((k, n, n))
        leaky = np.zeros((k, n, n), dtype=bool)
        tax = np.zeros((k, n))
        if rules == "quota":
            quota[:, 0] = rng.uniform(0, 40, k)
        if rules == "embargo_tax":
            access[:, 0, 1] = 0.0
            access[:, 0, 2] = 0.3
            leaky[:, 0, 1] = True
            access[:, 0, 1] = 0.1
            tax[:, 0] = 0.25
        contracts = [Contracts.empty() for _ in range(k)]
        contracts[2] = Contracts(np.array([0]), np.array([3]), np.array([20.0]), np.array([40.0]))
        pref = None if trial % 2 else rng.uniform(0.3, 1.0, (k, n, n))
        out = [
            clear_items(
                supply,
                demand,
                price,
                quota,
                access,
                leaky,
                tax,
                contracts,
                preference=pref,
                home_bias=home_bias,
                kernels=kern,
            )
            for kern in (None, kernels())
        ]
        a, b = out[0].stacked, out[1].stacked
        assert a.keys() == b.keys()
        assert a["flows"].sum() > 0
        for key in a:
            assert np.array_equal(a[key], b[key]), key
        for ca, cb in zip(out[0], out[1], strict=True):
            assert ca.freight == cb.freight
            assert np.array_equal(ca.contract_t, cb.contract_t)
            assert np.array_equal(ca.contract_seller_got, cb.contract_seller_got)


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
    names = ["producer_trade", "maker_settle", "producer_close", "expect_sales"]
    calls = []
    for name in names:
        fn = getattr(settle, name)
        monkeypatch.setattr(settle, name, lambda *a, _fn=fn, _n=name: calls.append(_n) or _fn(*a))
    _stepped("numba")
    # where numpy adds in another order (another build), settlement runs numpy's code instead
    assert calls == (names if settle.matches_numpy() else [])


@needs_numba
def test_block_sums_add_as_reduceat_over_long_blocks():
    """Blocks longer than 128 rows take numpy's halving (walked without recursion)."""
    from abm.kernels.settle import block_sums

    rng = np.random.default_rng(3)
    for m in (1, 9, 129, 300, 5000, 20000):
        x = rng.standard_normal((m, 5)) * 10.0 ** rng.integers(-6, 6, (m, 5))
        for starts in (np.array([0]), np.unique(np.r_[0, rng.integers(0, m, 4)])):
            assert np.array_equal(block_sums(x, starts), np.add.reduceat(x, starts, axis=0))


def test_no_kernel_calls_itself():
    """numba's cache crashes on reloading a self-recursive kernel: none may recurse."""
    import ast
    from pathlib import Path

    import abm

    folder = Path(abm.__file__).parent / "kernels"
    found = []
    for path in folder.glob("*.py"):
        for fn in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(fn, ast.FunctionDef):
                names = {
                    c.func.id
                    for c in ast.walk(fn)
                    if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)
                }
                if fn.name in names:
                    found.append(f"{path.name}:{fn.name}")
    assert len(list(folder.glob("*.py"))) >= 6
    assert found == []


@needs_numba
def test_forecasting_states_see_the_same_world_on_both_engines():
    """Lookahead states fork the model and run it ahead: the forks share the kernels."""
    ov = [f'countries.{c}.strategy="lookahead"' for c in ("China", "Japan")]
    a, b = (_run("taiwan-crisis", engine, 2_500, 30, ov) for engine in ("numpy", "numba"))
    assert a.recorder.frame(a.dates).equals(b.recorder.frame(b.dates))
    assert np.array_equal(a.firms.stock, b.firms.stock)
    assert np.array_equal(a.firms.cash, b.firms.cash)
