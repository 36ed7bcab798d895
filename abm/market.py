"""The market: a pure function from offers, bids and export rules to fills, payments and prices.

One call clears one item (a good at a stage) across all countries for one month. Quantities are
aggregated by country before the call (firms are summed with ``np.bincount``) and fills are
handed back to firms pro rata afterwards, so the cost of clearing does not grow with the number
of firms. Nothing here mutates its inputs; stocks and cash change only in settlement.

Order of service, each step taking what the previous one left:

1. offtake contracts, at the contract price, within the export rules;
2. domestic sales: each country's supply serves its own demand first (home bias);
3. exports, in rounds of proportional allocation: each importer asks every exporter with stock
   left in proportion to that stock times the importer's preference for it (trade
   relationships and perceived risk, given by the caller); a pair's flow is capped by its
   access share (embargo gives the leakage share, licensing the approval rate) times the flow
   the importer would have had without the restriction; an exporter's total is capped by its
   export quota for the item.

Buyers pay their own country's price (plus a premium on leaked tonnes); the exporter's state
collects the export tax out of that payment, freight takes a share, the seller gets the rest.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

import numpy as np

KG_PER_T = 1000.0
_EPS = 1e-9


@functools.cache
def _off_diagonal(n: int) -> np.ndarray:
    """(n, n) True off the diagonal (read-only; built once per size: ``np.eye`` costs us)."""
    off = ~np.eye(n, dtype=bool)
    off.flags.writeable = False
    return off


_KEPT: dict = {}  # name -> (the rule arrays, what was derived from them)


def _kept(name: str, arrays: tuple, build):
    """``build(*arrays)``, kept while the very same read-only rule arrays come back.

    The policy hands out its access, leakage and tax arrays read-only and shares them between
    months while the measures stay the same (``Policy.rule_arrays``), so masks derived from them
    alone can be built once per set of measures instead of every month. Only arrays that own
    their (read-only) data are trusted to stay unchanged; anything else is derived afresh. One
    entry per name: a new set of rules replaces the old. The derived arrays are read-only.
    """
    hit = _KEPT.get(name)
    if hit is not None and len(hit[0]) == len(arrays) and all(map(operator.is_, hit[0], arrays)):
        return hit[1]
    value = build(*arrays)
    if all(not a.flags.writeable and a.base is None for a in arrays):
        for v in value:
            if isinstance(v, np.ndarray):
                v.flags.writeable = False
        _KEPT[name] = (arrays, value)
    return value


def _diagonal(a: np.ndarray) -> np.ndarray:
    """Writable view of the diagonals ``a[:, x, x]`` of a C-contiguous (K, n, n) array.

    ``a[:, idx, idx] += v`` through fancy indexing costs about 4 us on 8 x 8 x 8; the strided
    view (every n + 1-th element of each flattened item) updates the same cells in place.
    """
    k, n, _ = a.shape
    return a.reshape(k, n * n)[:, :: n + 1]


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


_NO_TONNES = np.zeros(0)
_NO_TONNES.flags.writeable = False  # shared by items without contracts


def _clearing(**fields) -> Clearing:
    """A :class:`Clearing` built without the frozen dataclass's ``__init__``.

    A frozen dataclass sets each of its 14 fields through ``object.__setattr__`` (about 1.8 us
    an instance, 8 a month); filling the instance's ``__dict__`` gives the same object (equal,
    still frozen against assignment) in a third of the time.
    """
    obj = object.__new__(Clearing)
    obj.__dict__.update(fields)
    return obj


class Clearings(list):
    """One :class:`Clearing` per item, and the same figures stacked over items.

    ``stacked[name]`` is the (K, ...) array whose row ``i`` is item ``i``'s ``Clearing.name``
    (the very array the items' fields are views of), so callers that want all items at once
    need not stack them again. Replacing an item's clearing drops the stacked copy (callers then
    stack the items' own fields).
    """

    stacked: dict | None = None

    def __setitem__(self, key, value) -> None:
        self.stacked = None
        super().__setitem__(key, value)


def stacked(clearings: list, name: str) -> np.ndarray:
    """(K, ...) field ``name`` of every item's clearing (no copy when ``clearings`` has it)."""
    st = getattr(clearings, "stacked", None)
    if st is not None and name in st:
        return st[name]
    return np.array([getattr(cl, name) for cl in clearings])


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
    home_bias: float = 1.0,
) -> Clearing:
    """Clear one item across countries (see :func:`clear_items` for the rules).

    Args:
        supply: (C,) tonnes offered by each country's sellers.
        demand: (C,) tonnes bid for by each country's buyers.
        price: (C,) local price in US$/kg that buyers in each country pay.
        rules: export rules in force.
        contracts: offtake contracts served first (seller/buyer country, tonnes, price).
        leakage_premium: extra share of the local price paid on leaked tonnes.
        transport_share: share of an international payment lost to freight.
        rounds: rounds of proportional allocation for exports.
        home_bias: as in :func:`clear_items`.

    Returns:
        The fills, payments and leftovers.
    """
    contracts = Contracts.empty() if contracts is None else contracts
    return clear_items(
        np.asarray(supply, dtype=float)[None],
        np.asarray(demand, dtype=float)[None],
        np.asarray(price, dtype=float)[None],
        rules.quota_t[None],
        rules.access[None],
        rules.leaky[None],
        rules.tax[None],
        [contracts],
        leakage_premium=leakage_premium,
        transport_share=transport_share,
        rounds=rounds,
        home_bias=home_bias,
    )[0]


def clear_items(
    supply: np.ndarray,
    demand: np.ndarray,
    price: np.ndarray,
    quota_t: np.ndarray,
    access: np.ndarray,
    leaky: np.ndarray,
    tax: np.ndarray,
    contracts: list[Contracts],
    *,
    preference: np.ndarray | None = None,
    leakage_premium: float = 0.3,
    transport_share: float = 0.03,
    rounds: int = 6,
    home_bias: float = 1.0,
    kernels=None,
) -> list[Clearing]:
    """Clear K items at once (arrays with a leading item axis; one numpy pass for all items).

    Args:
        supply: (K, C) tonnes offered.
        demand: (K, C) tonnes bid for.
        price: (K, C) local prices, US$/kg.
        quota_t: (K, C) export quota per exporter this month (``inf`` when none).
        access: (K, C, C) share of the unrestricted flow that may pass.
        leaky: (K, C, C) True where the passing share is leakage.
        tax: (K, C) export tax rates.
        contracts: one :class:`Contracts` per item.
        preference: (K, C, C) weight importer y gives exporter x when it asks for goods
            (trade relationships and perceived risk); None = all ones.
        leakage_premium: as in :func:`clear_item`.
        transport_share: as in :func:`clear_item`.
        rounds: as in :func:`clear_item`.
        home_bias: share of its own demand a country serves from its own supply before it
            exports, when the world is short of an item (1 = home first, as domestic buyers
            are served first; 0 = every buyer takes the world's supply-to-demand ratio first).
            What is left after exports is sold at home, so nothing is withheld.
        kernels: :mod:`abm.kernels` on the numba engine (the same results), else None.

    Returns:
        One :class:`Clearing` per item.
    """
    K, n = supply.shape
    s_rem = np.array(supply, dtype=float, order="C")  # fresh C-ordered copies, as before
    d_rem = np.array(demand, dtype=float, order="C")
    quota = np.array(quota_t, dtype=float, order="C")
    flows = np.zeros((K, n, n))
    buyer_paid = np.zeros((K, n, n))

    # 1. contracts (few: a loop is clearer than masks)
    k_t = [np.zeros(c.tonnes.size) if c.tonnes.size else _NO_TONNES for c in contracts]
    for i, con in enumerate(contracts):
        for k in range(con.tonnes.size):
            x, y = int(con.seller[k]), int(con.buyer[k])
            cap = min(con.tonnes[k], s_rem[i, x], d_rem[i, y])
            if x != y:
                cap = min(cap, quota[i, x]) * (0.0 if leaky[i, x, y] else access[i, x, y])
                quota[i, x] -= cap
            cap = max(cap, 0.0)
            k_t[i][k] = cap
            s_rem[i, x] -= cap
            d_rem[i, y] -= cap
            flows[i, x, y] += cap
            buyer_paid[i, x, y] += cap * KG_PER_T * con.price_usd_per_kg[k]

    args = (s_rem, d_rem, quota, flows, buyer_paid, price, access, leaky, tax)
    pref = np.ones((K, n, n)) if preference is None else preference
    if kernels is None:
        after = _clear_after_contracts(
            *args, pref, leakage_premium, transport_share, rounds, home_bias
        )
    else:  # the same arithmetic, compiled (abm.kernels.market)
        after = kernels.market.clear_after_contracts(
            *args,
            np.ascontiguousarray(pref, dtype=float),
            float(leakage_premium),
            float(transport_share),
            int(rounds),
            float(home_bias),
        )
    leak, seller_got, tax_got, freight, sold, bought, unmet, unsold, e_rem, quota_binding = after
    freight_l = freight.tolist()  # Python floats, as float(freight[i]) gave
    out_list = []
    for i, con in enumerate(contracts):
        if con.tonnes.size:
            paid = k_t[i] * KG_PER_T * con.price_usd_per_kg
            intl_k = con.seller != con.buyer
            net = np.where(intl_k, paid * (1.0 - transport_share), paid)
            got = np.where(intl_k, net / (1.0 + tax[i][con.seller]), net)
        else:
            got = _NO_TONNES  # no contract: nothing paid (the same empty float array)
        out_list.append(
            _clearing(
                flows=flows[i],
                leaked=leak[i],
                contract_t=k_t[i],
                contract_seller_got=got,
                buyer_paid=buyer_paid[i],
                seller_got=seller_got[i],
                tax_got=tax_got[i],
                freight=freight_l[i],
                sold=sold[i],
                bought=bought[i],
                unmet=unmet[i],
                unsold=unsold[i],
                spare_exports=e_rem[i],
                quota_binding=quota_binding[i],
            )
        )
    result = Clearings(out_list)
    result.stacked = {
        "flows": flows,
        "leaked": leak,
        "buyer_paid": buyer_paid,
        "seller_got": seller_got,
        "tax_got": tax_got,
        "sold": sold,
        "bought": bought,
        "unmet": unmet,
        "unsold": unsold,
        "spare_exports": e_rem,
        "quota_binding": quota_binding,
    }
    return result


def _clear_after_contracts(
    s_rem: np.ndarray,
    d_rem: np.ndarray,
    quota: np.ndarray,
    flows: np.ndarray,
    buyer_paid: np.ndarray,
    price: np.ndarray,
    access: np.ndarray,
    leaky: np.ndarray,
    tax: np.ndarray,
    pref: np.ndarray,
    leakage_premium: float,
    transport_share: float,
    rounds: int,
    home_bias: float,
) -> tuple:
    """Steps 2-4 of :func:`clear_items` and the payments, after the contracts (numpy engine).

    ``s_rem``, ``d_rem``, ``quota``, ``flows`` and ``buyer_paid`` are updated in place.

    Returns:
        leak, seller_got, tax_got, freight, sold, bought, unmet, unsold, spare exports and
        quota_binding, stacked over items.
    """
    K, n = s_rem.shape
    # 2. domestic: home first, or, in a world shortage with home_bias < 1, only the world's
    # supply-to-demand ratio of home demand first (the rest after exports, step 4)
    if home_bias < 1.0:
        s_tot = np.add.reduce(s_rem, 1, keepdims=True)
        d_tot = np.add.reduce(d_rem, 1, keepdims=True)
        ratio = np.where(d_tot > _EPS, np.minimum(s_tot / np.maximum(d_tot, _EPS), 1.0), 1.0)
        first_claim = d_rem * (home_bias + (1.0 - home_bias) * ratio)  # served first, anywhere
        dom = np.minimum(s_rem, first_claim)
    else:
        dom = np.minimum(s_rem, d_rem)
    flows_diag, paid_diag = _diagonal(flows), _diagonal(buyer_paid)  # views: writes go through
    flows_diag += dom
    paid_diag += dom * KG_PER_T * price
    s_rem -= dom
    d_rem -= dom

    # 3. exports: importers ask exporters in proportion to their stock times preference
    off_diag = _off_diagonal(n)
    restricted, any_restricted, open_cap, leaky_off, any_leaky, tax_rate, any_tax = _kept(
        "clearing", (access, leaky, tax), _rule_masks
    )
    no_quota = bool((quota == np.inf).all())
    # what each exporter may still ship (stock within its quota; min(s, inf) is s, value for
    # value, so without a quota in force a copy of the stock)
    e_rem = s_rem.copy() if no_quota else np.minimum(s_rem, np.maximum(quota, 0.0))
    if any_restricted:
        # the flow each importer would get from each exporter with no restriction
        w = np.where(off_diag, s_rem[:, :, None], 0.0)
        wsum = np.add.reduce(w, 1, keepdims=True)  # w.sum(axis=1, keepdims=True)
        normal = (
            np.where(wsum > _EPS, w / np.where(wsum > _EPS, wsum, 1.0), 0.0) * d_rem[:, None, :]
        )
        cap = np.where(restricted, access * normal, open_cap)
    else:  # every route open: no cap abroad (inf), none at home (0), and nothing to update
        cap = open_cap
        pref = np.where(off_diag, pref, 0.0)  # what the caps' mask did: no requests at home
    open_routes = not any_restricted
    # its stock left: importers ask in proportion to this. Without a quota in force it is what
    # the exporter may ship, value for value, and stays so (the same updates): one array
    s_left = e_rem if no_quota else s_rem.copy()
    trade = np.zeros((K, n, n))
    if home_bias < 1.0:
        # importers first ask only for what takes them to their first claim (the world's
        # supply-to-demand ratio), so a short world is shared; then for the rest
        m_first = np.minimum(np.maximum(first_claim - dom, 0.0), d_rem)
        _export_rounds(m_first, e_rem, s_left, cap, trade, pref, rounds, open_routes)
        m_rest = np.maximum(d_rem - np.add.reduce(trade, 1), 0.0)
        _export_rounds(m_rest, e_rem, s_left, cap, trade, pref, rounds, open_routes)
    else:  # (the rounds do not change the demand they are given)
        _export_rounds(d_rem, e_rem, s_left, cap, trade, pref, rounds, open_routes)
    flows += trade
    unit = price[:, None, :] * KG_PER_T
    if any_leaky:
        leak = np.where(leaky_off, trade, 0.0)
        buyer_paid += trade * unit + leak * unit * leakage_premium
    else:  # no embargo: nothing leaked (adding the zero premium changes no value)
        leak = np.zeros((K, n, n))
        buyer_paid += trade * unit
    exported = np.add.reduce(trade, 2)  # trade.sum(axis=2)
    s_rem -= exported
    d_rem -= np.add.reduce(trade, 1)
    if home_bias < 1.0:
        # 4. what is left is sold at home
        dom = np.minimum(np.maximum(s_rem, 0.0), np.maximum(d_rem, 0.0))
        flows_diag += dom
        paid_diag += dom * KG_PER_T * price
        s_rem -= dom
        d_rem -= dom

    # payments: freight on international flows, tax to the exporter's state, rest to sellers
    intl = buyer_paid * off_diag
    freight_m = intl * transport_share
    # per-item totals for all items at once (row sums over the same 8 elements, same order;
    # np.add.reduce is what ndarray.sum calls, without its Python wrapper)
    if any_tax:
        taxable = intl - freight_m
        tax_m = taxable * tax_rate
        seller_got = buyer_paid - freight_m - tax_m
        tax_got = np.add.reduce(tax_m, 2)
    else:  # no export tax: its share is 0 (subtracting zeros changes no value; sums are 0)
        seller_got = buyer_paid - freight_m
        tax_got = np.zeros((K, n))
    if no_quota:  # without a quota in force none binds
        quota_binding = np.zeros((K, n), dtype=bool)
    else:
        quota_binding = np.isfinite(quota)
        quota_left = np.maximum(quota, 0.0) - exported
        quota_binding &= (quota_left <= 1e-6 * (np.abs(quota) + 1.0)) & (s_rem > _EPS)
    sold = np.add.reduce(flows, 2)
    bought = np.add.reduce(flows, 1)
    unmet = np.maximum(d_rem, 0.0)
    unsold = np.maximum(s_rem, 0.0)
    freight = np.add.reduce(freight_m.reshape(K, -1), 1)
    return leak, seller_got, tax_got, freight, sold, bought, unmet, unsold, e_rem, quota_binding


def _rule_masks(access: np.ndarray, leaky: np.ndarray, tax: np.ndarray) -> tuple:
    """What clearing derives from the access, leakage and tax rules alone (kept by ``_kept``).

    Returns:
        restricted routes (abroad with access < 1) and whether there are any, the route caps
        without restriction (inf abroad, 0 at home), leaky routes abroad and whether there are
        any, each exporter's tax share of a taxable payment tax / (1 + tax) (K, C, 1) and
        whether any tax is in force.
    """
    off_diag = _off_diagonal(access.shape[1])
    restricted = (access < 1.0) & off_diag
    open_cap = np.where(off_diag, np.full(access.shape, np.inf), 0.0)
    leaky_off = leaky & off_diag
    tax_rate = tax[:, :, None] / (1.0 + tax[:, :, None])
    return (
        restricted,
        bool(restricted.any()),
        open_cap,
        leaky_off,
        bool(leaky.any()),
        tax_rate,
        bool(tax.any()),
    )


def _export_rounds(
    m_rem: np.ndarray,
    e_rem: np.ndarray,
    s_left: np.ndarray,
    cap: np.ndarray,
    trade: np.ndarray,
    pref: np.ndarray,
    rounds: int,
    open_routes: bool = False,
) -> None:
    """Rounds of proportional export requests (step 3 of :func:`clear_items`), in place.

    Importers ask for ``m_rem`` (K, C); ``e_rem`` (what each exporter may still ship),
    ``s_left`` (its stock left), ``cap`` (K, C, C) (what each route may still carry) and
    ``trade`` (K, C, C) (the flows so far) are updated in place: at 8 x 8 x 8 the cost is the
    calls' overhead, not the arithmetic, so fewer temporaries and calls save time.

    ``open_routes`` says every route abroad is open (``cap`` is inf abroad and 0 at home, and
    stays so) and ``pref`` is 0 at home: then the caps cannot bind and are not looked at. A
    route with no room (cap <= eps, only at home) gets a stock times a preference of 0 where
    the mask would give 0 (stocks and preferences are >= 0); min(req, inf) is req; inf - f is
    inf and 0 - 0 is 0, so the same values as the masks and caps give.
    """
    for _ in range(rounds):
        # importers ask exporters with stock left (e_rem > eps) on routes with room (cap > eps):
        # the stock of an exporter with nothing left to ship counts as 0 (stocks and
        # preferences are >= 0, so 0 x pref is the 0 the mask gave)
        avail = (s_left * (e_rem > _EPS))[:, :, None] * pref
        if not open_routes:
            avail = np.where(cap > _EPS, avail, 0.0)
        tot = np.add.reduce(avail, 1)  # avail.sum(axis=1), without ndarray.sum's wrapper
        pos = tot > _EPS
        # importers with nothing available (tot <= eps) ask for nothing: their demand counts
        # as 0 (demand left is >= 0, so 0 x avail is the 0 a mask on the requests gave), and
        # a round where only they asked would have moved nothing
        req = (m_rem * pos)[:, None, :] * avail
        if not np.count_nonzero(req):  # nothing asked anywhere: this round would move nothing
            break
        req /= np.where(pos, tot, 1.0)[:, None, :]
        f = req if open_routes else np.minimum(req, cap, out=req)
        out = np.add.reduce(f, 2)
        # exporters asked for more than they may ship scale down to e_rem / out
        over = out > e_rem
        if over.any():
            f *= np.where(over, e_rem / np.where(out > _EPS, out, 1.0), 1.0)[:, :, None]
            f_out = np.add.reduce(f, 2)
        else:  # no exporter scaled: the same row sums
            f_out = out
        if np.add.reduce(f, None) <= _EPS:  # f.sum()
            break
        trade += f
        e_rem -= f_out
        np.maximum(e_rem, 0.0, out=e_rem)
        if s_left is not e_rem:
            s_left -= f_out
            np.maximum(s_left, 0.0, out=s_left)
        m_rem = m_rem - np.add.reduce(f, 1)
        np.maximum(m_rem, 0.0, out=m_rem)
        if not open_routes:
            cap -= f


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
    """Pull together the log prices of countries linked by an open trade route (one item).

    See :func:`arbitrage_items`.
    """
    return arbitrage_items(
        logp[None],
        clearing.flows[None],
        clearing.spare_exports[None],
        supply[None],
        clearing.quota_binding[None],
        rules.access[None],
        rules.tax[None],
        strength,
    )[0]


def arbitrage_items(
    logp: np.ndarray,
    flows: np.ndarray,
    spare_exports: np.ndarray,
    supply: np.ndarray,
    quota_binding: np.ndarray,
    access: np.ndarray,
    tax: np.ndarray,
    strength: float,
) -> np.ndarray:
    """Pull together log prices of countries linked by an open trade route, for K items at once.

    A route x -> y links when it is fully open (no embargo or licence), x's export quota does
    not bind, and the route carried goods this month or x still had goods to spare. A share
    ``strength`` of each gap (net of x's export tax) closes per month (three passes). Cut routes
    do not link: that is how one market splits into segments with their own prices.

    Args:
        logp: (K, C) log prices before arbitrage.
        flows: (K, C, C) tonnes moved this month.
        spare_exports: (K, C) tonnes exporters could still have shipped.
        supply: (K, C) tonnes offered.
        quota_binding: (K, C) where an export quota stopped exports.
        access: (K, C, C) share of the unrestricted flow that may pass.
        tax: (K, C) export tax rates.
        strength: share of a gap closed per pass.

    Returns:
        (K, C) new log prices.
    """
    links = arbitrage_links(flows, spare_exports, supply, quota_binding, access, tax)
    return arbitrage_pull(logp, links, strength)


def arbitrage_links(
    flows: np.ndarray,
    spare_exports: np.ndarray,
    supply: np.ndarray,
    quota_binding: np.ndarray,
    access: np.ndarray,
    tax: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The open routes of K items for :func:`arbitrage_pull` (arguments as arbitrage_items).

    Returns the (K, C, C) 0/1 link matrix L, each country's number of links (K, C) and the
    fixed tax-wedge part of its neighbours' sum (K, C). Every item's terms depend only on its
    own rows, so they can be built once for all items and indexed by item
    (``tuple(a[ix] for a in links)``).
    """
    n = flows.shape[1]
    off = _off_diagonal(n)
    spare = spare_exports > 1e-6 * (supply + 1.0)
    carried = flows > 1e-9
    link = off & (access >= 1.0) & (spare[:, :, None] | carried) & ~quota_binding[:, :, None]
    # each country's linked neighbours' log prices net of the wedge: for route x -> y, y sees
    # logp[x] + wedge[x] and x sees logp[y] - wedge[x]; as sums over the 0/1 link matrix L:
    # num = logp @ L + L @ logp + (wedge @ L - wedge * out_degree), the wedge part fixed
    lk = link.astype(float)
    wedge = np.log1p(tax)
    out_deg = lk.sum(axis=2)
    cnt = lk.sum(axis=1) + out_deg
    fixed = np.matmul(wedge[:, None, :], lk)[:, 0, :] - wedge * out_deg
    return lk, cnt, fixed


def arbitrage_pull(
    logp: np.ndarray, links: tuple[np.ndarray, np.ndarray, np.ndarray], strength: float
) -> np.ndarray:
    """Three passes of the arbitrage pull on (K, C) log prices over :func:`arbitrage_links`."""
    lk, cnt, fixed = links
    if not lk.any() or strength <= 0:
        return logp
    den = 1 + cnt
    for _ in range(3):
        num = np.matmul(logp[:, None, :], lk)[:, 0, :] + np.matmul(lk, logp[:, :, None])[:, :, 0]
        target = (logp + num + fixed) / den  # = logp where a country has no link
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
