"""The market: a pure function from offers, bids and export rules to fills, payments and prices.

One call clears one item (a good at a stage) across all countries for one month. Quantities are
aggregated by country before the call (firms are summed with ``np.bincount``) and fills are
handed back to firms pro rata afterwards, so the cost of clearing does not grow with the number
of firms. Nothing here mutates its inputs; stocks and cash change only in settlement.

Order of service, each step taking what the previous one left:

1. offtake contracts, at the contract price, within the export rules;
2. domestic sales: each country's supply serves its own demand first (home bias);
3. exports, in rounds of proportional allocation: each importer asks every exporter with stock
   left in proportion to that stock; a pair's flow is capped by its access share (embargo gives
   the leakage share, licensing the approval rate) times the flow the importer would have had
   without the restriction; an exporter's total is capped by its export quota for the item.

Buyers pay their own country's price (plus a premium on leaked tonnes); the exporter's state
collects the export tax out of that payment, freight takes a share, the seller gets the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KG_PER_T = 1000.0
_EPS = 1e-9


@dataclass(frozen=True)
class Contracts:
    """Offtake contracts for one item: arrays of equal length K."""

    seller: np.ndarray  # (K,) seller country index
    buyer: np.ndarray  # (K,) buyer country index
    tonnes: np.ndarray  # (K,) tonnes deliverable this month (already capped by seller stock)
    price_usd_per_kg: np.ndarray  # (K,)

    @staticmethod
    def empty() -> Contracts:
        """No contracts."""
        z = np.zeros(0)
        return Contracts(z.astype(int), z.astype(int), z, z)


@dataclass(frozen=True)
class Rules:
    """Export rules in force for one item this month.

    Attributes:
        quota_t: (C,) tonnes each exporter may ship abroad this month (``inf`` when unlimited).
        access: (C, C) share of the unrestricted flow x -> y that may pass (1 = open).
        leaky: (C, C) True where the passing share is leakage (embargo) and pays a premium.
        tax: (C,) export tax rate of each exporter.
    """

    quota_t: np.ndarray
    access: np.ndarray
    leaky: np.ndarray
    tax: np.ndarray

    @staticmethod
    def open(n: int) -> Rules:
        """No restriction anywhere."""
        return Rules(np.full(n, np.inf), np.ones((n, n)), np.zeros((n, n), dtype=bool), np.zeros(n))


@dataclass(frozen=True)
class Clearing:
    """What one item's market did this month (tonnes and US$)."""

    flows: np.ndarray  # (C, C) tonnes from seller country x (row) to buyer country y (column)
    leaked: np.ndarray  # (C, C) tonnes of flows that went by leakage
    contract_t: np.ndarray  # (K,) tonnes delivered per contract
    contract_seller_got: np.ndarray  # (K,) US$ the contract seller received
    buyer_paid: np.ndarray  # (C, C) US$ paid by buyers in y for goods from x
    seller_got: np.ndarray  # (C, C) US$ received by sellers in x from buyers in y
    tax_got: np.ndarray  # (C,) US$ export tax collected by each exporter state
    freight: float  # US$ paid to freight (leaves the model economy)
    sold: np.ndarray  # (C,) tonnes sold by each country's sellers
    bought: np.ndarray  # (C,) tonnes received by each country's buyers
    unmet: np.ndarray  # (C,) tonnes of demand not served
    unsold: np.ndarray  # (C,) tonnes of supply not sold
    spare_exports: np.ndarray  # (C,) tonnes an exporter could still have shipped abroad
    quota_binding: np.ndarray  # (C,) True where the export quota stopped exports


def clear_item(
    supply: np.ndarray,
    demand: np.ndarray,
    price: np.ndarray,
    rules: Rules,
    contracts: Contracts | None = None,
    *,
    leakage_premium: float = 0.3,
    transport_share: float = 0.03,
    rounds: int = 6,
) -> Clearing:
    """Clear one item across countries.

    Args:
        supply: (C,) tonnes offered by each country's sellers.
        demand: (C,) tonnes bid for by each country's buyers.
        price: (C,) local price in US$/kg that buyers in each country pay.
        rules: export rules in force.
        contracts: offtake contracts served first (seller/buyer country, tonnes, price).
        leakage_premium: extra share of the local price paid on leaked tonnes.
        transport_share: share of an international payment lost to freight.
        rounds: rounds of proportional allocation for exports.

    Returns:
        The fills, payments and leftovers.
    """
    supply = np.asarray(supply, dtype=float)
    demand = np.asarray(demand, dtype=float)
    price = np.asarray(price, dtype=float)
    n = supply.size
    s_rem = supply.copy()
    d_rem = demand.copy()
    quota = rules.quota_t.astype(float).copy()
    flows = np.zeros((n, n))
    leaked = np.zeros((n, n))
    buyer_paid = np.zeros((n, n))

    # 1. contracts
    if contracts is None:
        contracts = Contracts.empty()
    k_t = np.zeros(contracts.tonnes.size)
    for k in range(contracts.tonnes.size):  # few contracts: a loop is clearer than masks
        x, y = int(contracts.seller[k]), int(contracts.buyer[k])
        cap = min(contracts.tonnes[k], s_rem[x], d_rem[y])
        if x != y:
            cap = min(cap, quota[x]) * (rules.access[x, y] if not rules.leaky[x, y] else 0.0)
            quota[x] -= cap
        cap = max(cap, 0.0)
        k_t[k] = cap
        s_rem[x] -= cap
        d_rem[y] -= cap
        flows[x, y] += cap
        buyer_paid[x, y] += cap * KG_PER_T * contracts.price_usd_per_kg[k]

    # 2. domestic
    dom = np.minimum(s_rem, d_rem)
    idx = np.arange(n)
    flows[idx, idx] += dom
    buyer_paid[idx, idx] += dom * KG_PER_T * price
    s_rem -= dom
    d_rem -= dom

    # 3. exports
    exportable = np.minimum(s_rem, np.maximum(quota, 0.0))
    off_diag = ~np.eye(n, dtype=bool)
    restricted = (rules.access < 1.0) & off_diag
    # the flow each importer would get from each exporter with no restriction
    w = np.where(off_diag, s_rem[:, None], 0.0)
    wsum = w.sum(axis=0)
    normal = np.where(wsum > _EPS, w / np.where(wsum > _EPS, wsum, 1.0), 0.0) * d_rem[None, :]
    cap = np.where(restricted, rules.access * normal, np.inf)
    cap = np.where(off_diag, cap, 0.0)
    e_rem = exportable.copy()
    m_rem = d_rem.copy()
    trade = np.zeros((n, n))
    for _ in range(rounds):
        can = (cap > _EPS) & (e_rem[:, None] > _EPS)
        avail = np.where(can, e_rem[:, None], 0.0)
        tot = avail.sum(axis=0)
        req = np.where(tot > _EPS, m_rem[None, :] * avail / np.where(tot > _EPS, tot, 1.0), 0.0)
        req = np.minimum(req, cap)
        out = req.sum(axis=1)
        scale = np.where(out > e_rem, e_rem / np.where(out > _EPS, out, 1.0), 1.0)
        f = req * scale[:, None]
        if f.sum() <= _EPS:
            break
        trade += f
        e_rem = np.maximum(e_rem - f.sum(axis=1), 0.0)
        m_rem = np.maximum(m_rem - f.sum(axis=0), 0.0)
        cap = cap - f
    leak = np.where(rules.leaky & off_diag, trade, 0.0)
    flows += trade
    leaked += leak
    unit = np.broadcast_to(price[None, :] * KG_PER_T, (n, n))
    buyer_paid += trade * unit + leak * unit * leakage_premium
    s_rem -= trade.sum(axis=1)
    d_rem -= trade.sum(axis=0)

    # payments: freight on international flows, tax to the exporter's state, rest to sellers
    intl = buyer_paid * off_diag
    freight_m = intl * transport_share
    taxable = intl - freight_m
    tax_m = taxable * (rules.tax[:, None] / (1.0 + rules.tax[:, None]))
    seller_got = buyer_paid - freight_m - tax_m
    k_paid = k_t * KG_PER_T * contracts.price_usd_per_kg
    k_intl = contracts.seller != contracts.buyer
    k_net = np.where(k_intl, k_paid * (1.0 - transport_share), k_paid)
    k_got = (
        np.where(k_intl, k_net / (1.0 + rules.tax[contracts.seller]), k_net) if k_t.size else k_t
    )
    quota_left = np.maximum(quota, 0.0) - trade.sum(axis=1)
    quota_binding = (
        np.isfinite(quota) & (quota_left <= 1e-6 * (np.abs(quota) + 1.0)) & (s_rem > _EPS)
    )
    return Clearing(
        flows=flows,
        leaked=leaked,
        contract_t=k_t,
        contract_seller_got=k_got,
        buyer_paid=buyer_paid,
        seller_got=seller_got,
        tax_got=tax_m.sum(axis=1),
        freight=float(freight_m.sum()),
        sold=flows.sum(axis=1),
        bought=flows.sum(axis=0),
        unmet=np.maximum(d_rem, 0.0),
        unsold=np.maximum(s_rem, 0.0),
        spare_exports=e_rem,
        quota_binding=quota_binding,
    )


def excess_demand(
    clearing: Clearing, supply: np.ndarray, demand: np.ndarray, reserve: np.ndarray | None = None
) -> np.ndarray:
    """(C,) excess demand ratio ``z = (unmet - max(unsold - reserve, 0)) / (demand + supply)``.

    The reserve is the working stock sellers want to keep: only stocks above it count as excess
    supply, and only unmet demand counts as excess demand.
    """
    reserve = np.zeros_like(supply) if reserve is None else reserve
    return (clearing.unmet - np.maximum(clearing.unsold - reserve, 0.0)) / (demand + supply + _EPS)


def arbitrage(
    logp: np.ndarray, clearing: Clearing, supply: np.ndarray, rules: Rules, strength: float
) -> np.ndarray:
    """Pull together the log prices of countries linked by an open trade route.

    A route x -> y links when it is fully open (no embargo or licence), x's export quota does
    not bind, and the route carried goods this month or x still had goods to spare. A share
    ``strength`` of each gap (net of x's export tax) closes per month. Cut routes do not link:
    that is how one market splits into segments with their own prices.
    """
    n = logp.size
    off = ~np.eye(n, dtype=bool)
    spare = clearing.spare_exports > 1e-6 * (supply + 1.0)
    carried = clearing.flows > 1e-9
    link = (
        off & (rules.access >= 1.0) & (spare[:, None] | carried) & ~clearing.quota_binding[:, None]
    )
    if not link.any() or strength <= 0:
        return logp
    wedge = np.log1p(rules.tax)[:, None] * np.ones((1, n))
    for _ in range(3):
        to_y = np.where(link, logp[:, None] + wedge, 0.0)
        to_x = np.where(link, logp[None, :] - wedge, 0.0)
        num = to_y.sum(axis=0) + to_x.sum(axis=1)
        cnt = link.sum(axis=0) + link.sum(axis=1)
        target = np.where(cnt > 0, (logp + num) / (1 + cnt), logp)
        logp = (1 - strength) * logp + strength * target
    return logp


def update_prices(
    price: np.ndarray,
    clearing: Clearing,
    supply: np.ndarray,
    demand: np.ndarray,
    rules: Rules,
    *,
    adjust_speed: float,
    arbitrage_strength: float,
    max_log_change: float,
    reserve: np.ndarray | None = None,
    floor: float = 1e-3,
) -> np.ndarray:
    """Next month's local prices for one item (tatonnement, then arbitrage).

    Each country's log price moves by ``adjust_speed * z`` (see :func:`excess_demand`), capped
    at ``max_log_change`` up and half that down; then :func:`arbitrage` links open markets.

    Returns:
        (C,) new prices in US$/kg, at least ``floor``.
    """
    z = excess_demand(clearing, supply, demand, reserve)
    logp = np.log(np.maximum(price, floor))
    logp = logp + np.clip(adjust_speed * z, -0.5 * max_log_change, max_log_change)
    logp = arbitrage(logp, clearing, supply, rules, arbitrage_strength)
    return np.maximum(np.exp(logp), floor)
