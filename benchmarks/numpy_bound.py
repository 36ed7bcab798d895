"""A lower bound for our per-firm work: the same kind of arithmetic in plain numpy, no model.

One "month" below is the firm update of ``abm.model.RareEarthModel.step`` reduced to its
per-firm array arithmetic, laid out as the model lays it out: manufacturers (77% of firms, as
the model's population has them) on the 5 items they use, producers on all 8, perceived risk
and intensity per home country (every buyer of a country holds the same values), no markets,
no policy, no recording and no checks but the stock ones (``benchmarks.opcount`` counts the
numpy calls and element passes of both, for a like-for-like comparison):

- manufacturers' orders: the risk-weighted inventory target (risk by country times the
  supplier shares, gathered to firms), need, gap, clipped orders;
- manufacturers' settlement: fills and unit costs gathered by home country, payments (an
  ``einsum``), stock moves, consumption, lost output, grouped sums over the country blocks
  (``np.add.reduceat``);
- producers: margins, run rates, output, offers, sales, revenue, discards, sales expectations,
  loss months, a grouped sum by country (a 0/1 matrix product, as the model does); plans on
  their three element groups; value added; seller reserves; and the elements of the model's
  many one-number-per-firm updates, as operations on a stack of eight such numbers;
- learning: risk decay and shocks and the substitution cut, per country.

Numbers are random and carry no meaning; only the shapes and the count of passes matter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

K = 8
"""Columns per producer: the model's items (three concentrates, three oxides, two magnets)."""
KM = 5
"""Columns per manufacturer: the items they use (three oxides, two magnet grades)."""
COUNTRIES = 8
MAKER_SHARE = 0.77
"""Share of firms that are manufacturers (the model's population weights)."""


@dataclass
class FirmArrays:
    """Per-firm state, one row per firm, in the model's two blocks."""

    m_country: np.ndarray  # (M,) manufacturers' home country, in contiguous blocks
    m_starts: np.ndarray  # (C,) first row of each country's block
    m_stock: np.ndarray  # (M, KM)
    m_use: np.ndarray  # (M, KM) monthly use at intensity 1
    m_sens: np.ndarray  # (M,) risk sensitivity
    m_cash: np.ndarray  # (M,)
    m_ones: np.ndarray  # (M,) ones, for column sums by matrix-vector products
    p_country: np.ndarray  # (P,) producers' home country
    p_onehot: np.ndarray  # (C, P) 0/1 home-country matrix for grouped sums
    p_stock: np.ndarray  # (P, K)
    comp: np.ndarray  # (P, K) output mix
    exp_sales: np.ndarray  # (P, K)
    capacity: np.ndarray  # (P,)
    rate: np.ndarray  # (P,)
    cash: np.ndarray  # (P,)
    unit_cost: np.ndarray  # (P,)
    loss_months: np.ndarray  # (P,)
    p_ones: np.ndarray  # (P,)
    basket: np.ndarray  # (P, 3) element mix
    inputs: np.ndarray  # (P, 3) planned inputs
    scalars: np.ndarray  # (P, 8) eight one-number-per-firm quantities


@dataclass
class World:
    """Country-level inputs and state of a month (small arrays)."""

    share: np.ndarray  # (COUNTRIES, COUNTRIES, KM) supplier shares [buyer, origin, item]
    risk: np.ndarray  # (COUNTRIES, COUNTRIES) buyers' perceived risk by home country
    intensity: np.ndarray  # (COUNTRIES, KM)
    factor: np.ndarray  # (COUNTRIES, K) demand factor
    fill: np.ndarray  # (COUNTRIES, K)
    cost: np.ndarray  # (COUNTRIES, K)
    value: np.ndarray  # (COUNTRIES,) value of a unit of output
    shock: np.ndarray  # (COUNTRIES, COUNTRIES)
    cut: np.ndarray  # (COUNTRIES, KM)
    reo: np.ndarray  # (KM,)
    sell_mask: np.ndarray  # (K,)


def make_firms(n: int, seed: int = 1) -> tuple[FirmArrays, World]:
    """Random firm arrays and country inputs of the model's shapes."""
    rng = np.random.default_rng(seed)
    m = int(round(n * MAKER_SHARE))
    p = n - m
    m_country = np.sort(rng.integers(0, COUNTRIES, m))
    p_country = rng.integers(0, COUNTRIES, p)
    onehot = np.zeros((COUNTRIES, p))
    onehot[p_country, np.arange(p)] = 1.0
    firms = FirmArrays(
        m_country=m_country,
        m_starts=np.searchsorted(m_country, np.arange(COUNTRIES)),
        m_stock=rng.random((m, KM)),
        m_use=rng.random((m, KM)),
        m_sens=rng.lognormal(0.0, 0.3, m),
        m_cash=np.zeros(m),
        m_ones=np.ones(m),
        p_country=p_country,
        p_onehot=onehot,
        p_stock=rng.random((p, K)),
        comp=rng.dirichlet(np.ones(K), p),
        exp_sales=rng.random((p, K)),
        capacity=rng.lognormal(0.0, 0.5, p),
        rate=np.full(p, 0.9),
        cash=np.zeros(p),
        unit_cost=rng.lognormal(0.0, 0.3, p),
        loss_months=np.zeros(p, dtype=np.int32),
        p_ones=np.ones(p),
        basket=rng.dirichlet(np.ones(3), p),
        inputs=np.zeros((p, 3)),
        scalars=rng.random((p, K)),
    )
    world = World(
        share=rng.dirichlet(np.ones(COUNTRIES), (COUNTRIES, KM)).transpose(0, 2, 1).copy(),
        risk=0.1 * rng.random((COUNTRIES, COUNTRIES)),
        intensity=np.ones((COUNTRIES, KM)),
        factor=1.0 + 0.1 * rng.random((COUNTRIES, K)),
        fill=0.8 + 0.2 * rng.random((COUNTRIES, K)),
        cost=rng.random((COUNTRIES, K)),
        value=1.0 + 0.2 * rng.random(COUNTRIES),
        shock=0.05 * rng.random((COUNTRIES, COUNTRIES)),
        cut=1.0 - 0.001 * rng.random((COUNTRIES, KM)),
        reo=rng.random(KM),
        sell_mask=(rng.random(K) > 0.5).astype(float),
    )
    return firms, world


def numpy_month(f: FirmArrays, w: World) -> tuple:
    """One month of firm arithmetic; returns the grouped sums and the holdings checked."""
    mc, pc = f.m_country, f.p_country
    held_before = f.m_ones @ f.m_stock, f.p_ones @ f.p_stock  # the conservation check
    j = slice(K - KM, K)  # the items manufacturers use
    # manufacturers' orders: precautionary inventory target from perceived risk (per country)
    r_eff = np.einsum("cx,cxk->ck", w.risk, w.share)  # (C, KM)
    need = f.m_use * np.take(w.factor[:, j] * w.intensity, mc, axis=0)
    gap = np.take(6.0 * r_eff, mc, axis=0)
    gap *= f.m_sens[:, None]
    gap += 2.0
    gap *= need
    gap -= f.m_stock
    gap /= 4.0
    gap += need
    np.maximum(gap, 0.0, out=gap)
    gap *= need > 0
    demand = np.add.reduceat(gap, f.m_starts, axis=0)  # ordered by country, for the market
    # settlement: what the market filled, payments, consumption, lost output
    got = gap * np.take(w.fill[:, j], mc, axis=0)
    paid = np.einsum("nk,nk->n", got, np.take(w.cost[:, j], mc, axis=0))
    f.m_cash -= paid
    f.m_stock += got
    f.m_cash += paid  # pass-through, as the model's manufacturers recover input costs
    if f.m_stock.min() < -1e-6:  # the model's conservation check, in its cheapest form
        raise ArithmeticError("negative stock")
    use = np.minimum(f.m_stock, need)
    f.m_stock -= use
    lost = (need - use) @ w.reo
    f.m_cash -= lost
    by_country = np.add.reduceat(use, f.m_starts, axis=0)
    # producers: run rate follows the margin; output, sales and revenue by home country
    margin = (w.value[pc] - f.unit_cost) / np.maximum(f.unit_cost, 1e-9)
    f.rate += 0.2 * (np.clip(0.5 + margin, 0.0, 1.0) - f.rate)
    out = (f.capacity * f.rate / 12.0)[:, None] * f.comp
    f.p_stock += out
    offers = np.clip(f.exp_sales + (3.0 * f.exp_sales - f.p_stock) / 2.0, 0.0, f.p_stock)
    supply = f.p_onehot @ offers  # offered by country, for the market
    sold = offers * np.take(w.fill, pc, axis=0)
    f.cash += np.einsum("nk,nk->n", sold, np.take(w.cost, pc, axis=0))
    f.p_stock -= sold
    discard = np.where(out > 0, np.maximum(f.p_stock - 6.0 * out, 0.0), 0.0)
    f.p_stock -= discard
    f.exp_sales += 0.3 * (sold - f.exp_sales) * w.sell_mask
    losing = (margin < 0) & (f.capacity > 0)
    f.loss_months = np.where(losing, f.loss_months + 1, 0)
    # producers' plans on their three element groups (mines' sales plans, separators' oxide
    # plans and concentrate inputs: about 43 operations on (P, 3) arrays in the model)
    cap3 = (f.capacity / 12.0)[:, None] * f.basket
    for k in range(2):
        held = f.p_stock[:, 3 * (k % 2) : 3 * (k % 2) + 3]
        exp3 = np.maximum(f.exp_sales[:, 0:3], 0.05 * cap3)
        plan3 = exp3 + (3.0 * exp3 - held) / 2.0
        np.clip(plan3, 0.0, cap3, out=plan3)
        take = plan3 / np.maximum(held + 1.0, 1e-12)
        plan3 = np.where(f.basket > 0, plan3 * take, 0.0)
        gap3 = (2.0 * plan3 - held) / 4.0
        f.inputs += np.maximum(plan3 + gap3, 0.0)
        f.inputs *= 0.5
        f.inputs -= 0.1 * exp3
        np.maximum(f.inputs, 0.0, out=f.inputs)
    # producers' value added at local prices, seller reserves and holding limits (P, 8)
    value = np.einsum("nk,nk->n", f.comp, np.take(w.cost, pc, axis=0))
    reserve = f.p_onehot @ (2.0 * f.exp_sales * w.sell_mask)
    limit = 6.0 * out * f.comp
    # producers' one-number-per-firm state (margins, run rates, utilisation, expectations,
    # projects, idling, bankruptcy, learning by doing: about 250 operations on (P,) arrays in
    # the model), as the same elements in operations on an (P, 8) stack of such numbers
    x = f.scalars
    for _ in range(15):
        x *= 0.999
        x += 0.001 * value[:, None]
    if f.p_stock.min() < -1e-6:
        raise ArithmeticError("negative stock")
    # learning: risk decays and jumps with shocks; intensity falls with substitution
    w.risk *= 0.96
    w.risk += w.shock * (1.0 - w.risk)
    w.intensity = np.maximum(w.intensity * w.cut, 0.3)
    held_after = f.m_ones @ f.m_stock, f.p_ones @ f.p_stock  # the conservation check
    return by_country, supply, demand, held_before, held_after, reserve, limit
