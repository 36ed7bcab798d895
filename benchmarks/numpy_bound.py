"""A lower bound for our per-firm work: the same kind of arithmetic in plain numpy, no model.

One "month" below is about 70 numpy calls whose inputs add up to about 50 (N, 8) arrays of
elements (``benchmarks.opcount`` measures both, for this and for the model, which does about the
same number of element passes in about 400 calls): the firm update of
``abm.model.RareEarthModel.step`` reduced to its array arithmetic, with every firm in one block
(no producer/manufacturer split), no markets, no policy, no recording and no checks but one:

- orders: risk-weighted inventory target (a (N, 8) @ (8, 8) product), need, gap, clipped orders;
- settlement: fills and unit costs gathered by home country, payments (an ``einsum``), stock
  and cash moves, consumption and lost output, a grouped sum by country (``np.bincount``);
- production: margins, run rates, output, offers, sales, revenue, discards, sales
  expectations, loss months;
- learning: risk decay and shocks by country, substitution (intensity cut), a clip of stocks.

Numbers are random and carry no meaning; only the shapes and the count of passes matter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

K = 8
"""Columns per firm: the model's items (three concentrates, three oxides, two magnet grades)."""
COUNTRIES = 8


@dataclass
class FirmArrays:
    """Per-firm state, one row per firm (the shapes the model uses)."""

    country: np.ndarray  # (N,) home country
    stock: np.ndarray  # (N, K)
    risk: np.ndarray  # (N, COUNTRIES)
    use: np.ndarray  # (N, K) monthly use at intensity 1
    comp: np.ndarray  # (N, K) output mix
    exp_sales: np.ndarray  # (N, K)
    intensity: np.ndarray  # (N, K)
    sens: np.ndarray  # (N,)
    capacity: np.ndarray  # (N,)
    rate: np.ndarray  # (N,)
    cash: np.ndarray  # (N,)
    unit_cost: np.ndarray  # (N,)
    loss_months: np.ndarray  # (N,)
    flat_idx: np.ndarray  # (N * K,) country * K + column, for grouped sums


@dataclass
class World:
    """Country-level inputs of a month (small arrays)."""

    share: np.ndarray  # (COUNTRIES, K) supplier shares
    factor: np.ndarray  # (COUNTRIES, K) demand factor
    fill: np.ndarray  # (COUNTRIES, K)
    cost: np.ndarray  # (COUNTRIES, K)
    value: np.ndarray  # (COUNTRIES,) value of a unit of output
    shock: np.ndarray  # (COUNTRIES, COUNTRIES)
    cut: np.ndarray  # (COUNTRIES, K)
    reo: np.ndarray  # (K,)
    sell_mask: np.ndarray  # (K,)


def make_firms(n: int, seed: int = 1) -> tuple[FirmArrays, World]:
    """Random firm arrays and country inputs of the model's shapes."""
    rng = np.random.default_rng(seed)
    country = rng.integers(0, COUNTRIES, n)
    firms = FirmArrays(
        country=country,
        stock=rng.random((n, K)),
        risk=rng.random((n, COUNTRIES)) * 0.1,
        use=rng.random((n, K)),
        comp=rng.dirichlet(np.ones(K), n),
        exp_sales=rng.random((n, K)),
        intensity=np.ones((n, K)),
        sens=rng.lognormal(0.0, 0.3, n),
        capacity=rng.lognormal(0.0, 0.5, n),
        rate=np.full(n, 0.9),
        cash=np.zeros(n),
        unit_cost=rng.lognormal(0.0, 0.3, n),
        loss_months=np.zeros(n, dtype=np.int32),
        flat_idx=(country[:, None] * K + np.arange(K)).ravel(),
    )
    world = World(
        share=rng.dirichlet(np.ones(COUNTRIES), K).T.copy(),
        factor=1.0 + 0.1 * rng.random((COUNTRIES, K)),
        fill=0.8 + 0.2 * rng.random((COUNTRIES, K)),
        cost=rng.random((COUNTRIES, K)),
        value=1.0 + 0.2 * rng.random(COUNTRIES),
        shock=0.05 * rng.random((COUNTRIES, COUNTRIES)),
        cut=1.0 - 0.001 * rng.random((COUNTRIES, K)),
        reo=rng.random(K),
        sell_mask=(rng.random(K) > 0.5).astype(float),
    )
    return firms, world


def numpy_month(f: FirmArrays, w: World) -> np.ndarray:
    """One month of firm arithmetic over all rows; returns the grouped use by country."""
    c = f.country
    # orders: precautionary inventory target from perceived risk, clipped at zero
    r_eff = f.risk @ w.share
    target = 2.0 + 6.0 * (f.sens[:, None] * r_eff)
    need = f.use * w.factor[c] * f.intensity
    gap = (target * need - f.stock) / 4.0
    orders = np.where(need > 0, np.maximum(need + gap, 0.0), 0.0)
    # settlement: what the market filled, payments, consumption, lost output
    got = orders * w.fill[c]
    f.cash -= np.einsum("nk,nk->n", got, w.cost[c])
    f.stock += got
    use = np.minimum(f.stock, need)
    f.stock -= use
    lost = (need - use) @ w.reo
    f.cash -= lost
    by_country = np.bincount(f.flat_idx, weights=use.ravel(), minlength=COUNTRIES * K)
    # production: run rate follows the margin; output, sales and revenue by home country
    margin = (w.value[c] - f.unit_cost) / np.maximum(f.unit_cost, 1e-9)
    f.rate += 0.2 * (np.clip(0.5 + margin, 0.0, 1.0) - f.rate)
    out = (f.capacity * f.rate / 12.0)[:, None] * f.comp
    f.stock += out
    offers = np.clip(f.exp_sales + (3.0 * f.exp_sales - f.stock) / 2.0, 0.0, f.stock)
    sold = offers * w.fill[c]
    f.cash += np.einsum("nk,nk->n", sold, w.cost[c])
    f.stock -= sold
    discard = np.where(out > 0, np.maximum(f.stock - 6.0 * out, 0.0), 0.0)
    f.stock -= discard
    f.exp_sales += 0.3 * (sold - f.exp_sales) * w.sell_mask
    losing = (margin < 0) & (f.capacity > 0)
    f.loss_months = np.where(losing, f.loss_months + 1, 0)
    # learning: risk decays and jumps with shocks; intensity falls with substitution
    f.risk *= 0.96
    f.risk += w.shock[c] * (1.0 - f.risk)
    f.intensity = np.maximum(f.intensity * w.cut[c], 0.3)
    if (f.stock < -1e-6).any():  # the model's conservation checks, in their cheapest form
        raise ArithmeticError("negative stock")
    np.clip(f.stock, 0.0, None, out=f.stock)
    return by_country.reshape(COUNTRIES, K)
