"""Firms: per-firm state in numpy arrays, Mesa agents as thin views, vectorised decision rules.

Every firm is a Mesa agent (:class:`FirmAgent`) so that Mesa's tooling can list and count them,
but the agent only holds its row index: all per-firm state lives in :class:`FirmState` arrays
and every per-month decision below is one numpy expression over all firms. No function here
changes stocks or cash: they return what firms want to do; settlement makes it happen.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import mesa
import numpy as np

from abm.constants import (
    COUNTRIES,
    GOODS,
    MAG_HT,
    MAG_STD,
    OXIDE,
    SECTORS,
    C,
    FirmKind,
    G,
    I,
    S,
)
from abm.scenario import Scenario, ScenarioError, month_index, parse_month

RECYCLE_BASKET = np.array([0.05, 0.91, 0.04])
"""Element mix of recycled oxide: end-of-life magnets dominate (assumption, see docs/ODD.md)."""

HT_SHARE_OF_MAGNETS = 0.25
"""Share of magnet tonnage made as the high-temperature (Dy/Tb) grade when heavy use is
entirely in magnets; the actual split per country follows its heavy/ndpr magnet use."""


@dataclass
class FirmState:
    """Struct of arrays, one row per firm.

    Perceived risk and rare-earth intensity are not here: every buyer of a country starts at the
    same value and takes the same shocks and cuts, so the model holds them once per home country
    (``RareEarthModel.risk_c`` and ``intensity_c``; ``firm_risk()`` and ``firm_intensity()``
    give them per firm).
    """

    kind: np.ndarray  # (N,) FirmKind
    country: np.ndarray  # (N,) country index
    named: np.ndarray  # (N,) index into the scenario's named firms, -1 if synthetic
    active: np.ndarray  # (N,) exists and is not bankrupt
    prospect: np.ndarray  # (N,) an undeveloped deposit or plant: no capacity until built
    online_month: np.ndarray  # (N,) month index when a named firm comes online
    capacity: np.ndarray  # (N,) t/yr (REO for mines, separators, recyclers; magnet t for magnets)
    prospect_size: np.ndarray  # (N,) t/yr a prospect would build
    prospect_cost: np.ndarray  # (N,) US$/kg of a deposit held by a producing firm (0 = own cost)
    basket: np.ndarray  # (N, G) element mix of a miner's or recycler's output
    unit_cost: np.ndarray  # (N,) US$/kg of output, excluding purchased inputs
    cash: np.ndarray  # (N,) US$
    stock: np.ndarray  # (N, I) tonnes held (outputs for sellers, inputs for buyers)
    idle: np.ndarray  # (N,) bool
    loss_months: np.ndarray  # (N,) consecutive months with an operating loss
    expected_margin: np.ndarray  # (N,) expected margin over full cost (adaptive)
    proj_size: np.ndarray  # (N,) t/yr under construction (0 = none)
    proj_left: np.ndarray  # (N,) months until the project produces
    proj_capex_left: np.ndarray  # (N,) US$ still to spend
    proj_bad_months: np.ndarray  # (N,) months with expected loss during construction
    use_tpy: np.ndarray  # (N, I) manufacturers' annual use at intensity 1
    sector_mix: np.ndarray  # (N, S) sector shares of a manufacturer's use
    value_per_kg: np.ndarray  # (N,) US$ of output lost per kg REO not supplied
    risk_sensitivity: np.ndarray  # (N,) heterogeneity in precautionary demand
    price_floor: np.ndarray  # (N,) guaranteed US$/kg for the oxide of one group (0 = none)
    price_floor_good: np.ndarray  # (N,) element group the floor covers (index into GOODS)
    ht_share: np.ndarray  # (N,) share of a magnet maker's output in the high-temp grade
    bankrupt_month: np.ndarray  # (N,) month of bankruptcy, -1 if none
    permitted: np.ndarray  # (N,) holds its permits already (a project needs no permit time)
    build_months: np.ndarray  # (N,) firm-specific build time, 0 = the kind's default
    ramp_cap: np.ndarray  # (N,) t/yr of new capacity still ramping up
    ramp_left: np.ndarray  # (N,) months of ramp-up left
    exp_sales: np.ndarray  # (N, I) expected monthly sales per item (adaptive)
    utilisation: np.ndarray  # (N,) smoothed output / capacity
    run_rate: np.ndarray  # (N, G) share of capacity a producer plans to run at (per group for
    # separators; column 0 for others), moved gradually toward the margin-based target

    @property
    def n(self) -> int:
        """Number of firms."""
        return self.kind.size

    def rows(self, block: slice) -> FirmState:
        """A view of a contiguous block of firms (no copy: writes go to the full arrays)."""
        return FirmState(**{f.name: getattr(self, f.name)[block] for f in fields(self)})

    def copy(self) -> FirmState:
        """A deep copy (for lookahead strategies)."""
        return FirmState(**{f.name: getattr(self, f.name).copy() for f in fields(self)})


class FirmAgent(mesa.Agent):
    """A firm as a Mesa agent: a view onto one row of :class:`FirmState`."""

    def __init__(self, model, row: int, name: str):
        super().__init__(model)
        self.row = row
        self.name = name

    @property
    def kind(self) -> FirmKind:
        """What the firm does."""
        return FirmKind(int(self.model.firms.kind[self.row]))

    @property
    def country(self) -> str:
        """Home country."""
        return COUNTRIES[int(self.model.firms.country[self.row])]

    @property
    def capacity_t_per_year(self) -> float:
        """Capacity in t/yr."""
        return float(self.model.firms.capacity[self.row])

    @property
    def cash_usd(self) -> float:
        """Cash in US$."""
        return float(self.model.firms.cash[self.row])


# ----------------------------------------------------------------------------- population


def _allocate(weights: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` slots over cells by weight, at least one per non-empty cell."""
    w = np.asarray(weights, dtype=float)
    nz = w > 0
    out = np.zeros(w.size, dtype=int)
    k = int(nz.sum())
    if k == 0:
        return out
    out[nz] = 1
    rest = total - k
    if rest > 0:
        share = w / w.sum() * rest
        base = np.floor(share).astype(int)
        out += base
        left = rest - base.sum()
        order = np.argsort(-(share - base), kind="stable")
        out[order[:left]] += 1
    return out


_KIND_CAP_FIELD = {
    FirmKind.MINER: "mine_capacity_t_per_year",
    FirmKind.SEPARATOR: "separation_capacity_t_per_year",
    FirmKind.MAGNET_MAKER: "magnet_capacity_t_per_year",
    FirmKind.RECYCLER: "recycling_capacity_t_per_year",
}
_KIND_COST_FIELD = {
    FirmKind.MINER: "mine_cost_usd_per_kg",
    FirmKind.SEPARATOR: "separation_cost_usd_per_kg",
    FirmKind.MAGNET_MAKER: "magnet_cost_usd_per_kg",
    FirmKind.RECYCLER: "recycling_cost_usd_per_kg",
}
_PROSPECT_KIND = {
    "miner": FirmKind.MINER,
    "separator": FirmKind.SEPARATOR,
    "magnet_maker": FirmKind.MAGNET_MAKER,
}

MIN_FIRMS_PER_PRODUCER_CELL = 1


def country_item_use(scn: Scenario) -> np.ndarray:
    """(C, I) annual end use of each country per traded item, at intensity 1.

    Light elements are used as oxide; NdPr and Dy/Tb partly as oxide and partly inside magnets
    (``magnet_share``), converted to magnet tonnes with the recipe in ``market``.
    """
    mk = scn.market
    use = np.zeros((C, I))
    for c, cp in enumerate(scn.countries):
        d = cp.demand_t_per_year
        ndpr_mag, heavy_mag = (
            d["ndpr"] * cp.magnet_share["ndpr"],
            d["heavy"] * cp.magnet_share["heavy"],
        )
        use[c, OXIDE[0]] = d["light"]
        use[c, OXIDE[1]] = d["ndpr"] - ndpr_mag
        use[c, OXIDE[2]] = d["heavy"] - heavy_mag
        # split magnet tonnes between grades so that both NdPr and Dy/Tb contents match
        a_std, a_ht = mk.magnet_ndpr_t_per_t["ndpr_magnet"], mk.magnet_ndpr_t_per_t["heavy_magnet"]
        h_std, h_ht = (
            mk.magnet_heavy_t_per_t["ndpr_magnet"],
            mk.magnet_heavy_t_per_t["heavy_magnet"],
        )
        det = a_std * h_ht - a_ht * h_std
        m_std = (ndpr_mag * h_ht - a_ht * heavy_mag) / det
        m_ht = (a_std * heavy_mag - h_std * ndpr_mag) / det
        if m_std < 0 or m_ht < 0:  # inconsistent inputs: keep NdPr content, grade by ratio
            total = ndpr_mag / (a_std * (1 - HT_SHARE_OF_MAGNETS) + a_ht * HT_SHARE_OF_MAGNETS)
            m_std, m_ht = total * (1 - HT_SHARE_OF_MAGNETS), total * HT_SHARE_OF_MAGNETS
        use[c, MAG_STD] = m_std
        use[c, MAG_HT] = m_ht
    return use


def build_population(scn: Scenario, rng: np.random.Generator) -> tuple[FirmState, list[str]]:
    """Create all firms: named real firms first, then synthetic firms by calibrated shares.

    The total number of firms is ``scn.firms``. Synthetic firms split each country's remaining
    capacity (after named firms) and end use, so aggregates do not depend on the firm count.

    Returns:
        The firm arrays and one display name per firm.
    """
    start = scn.start_ym
    hetero = scn.firm_behaviour.heterogeneity
    named = scn.named_firms
    use = country_item_use(scn)

    # cells: (kind, country, sector or -1, capacity, cost, prospect)
    cells: list[tuple[FirmKind, int, int, float, float, bool]] = []
    for c, cp in enumerate(scn.countries):
        for kind, cap_field in _KIND_CAP_FIELD.items():
            cap = getattr(cp, cap_field)
            # named firms running at the start are part of the country's capacity; prospects
            # and projects due online later are not
            cap -= sum(
                f.capacity_t_per_year
                for f in named
                if f.country == cp.name
                and f.kind == kind.name.lower()
                and not f.prospect
                and (not f.online or month_index(parse_month(f.online, "online"), start) <= 0)
            )
            if cap > 1e-6:
                cells.append((kind, c, -1, cap, getattr(cp, _KIND_COST_FIELD[kind]), False))
        for pname, size in cp.prospect_t_per_year.items():
            if size > 0:
                kind = _PROSPECT_KIND[pname]
                cost = getattr(cp, _KIND_COST_FIELD[kind]) * cp.prospect_cost_multiple
                cells.append((kind, c, -1, size, cost, True))
        if use[c].sum() > 0:
            for s, sector in enumerate(SECTORS):
                share = cp.sector_shares[sector]
                if share > 0:
                    cells.append((FirmKind.MANUFACTURER, c, s, share * use[c].sum(), 0.0, False))
    n_named = len(named)
    n_syn = scn.firms - n_named
    # calibrated shares of firm counts by kind (manufacturers are most firms)
    kind_weight = {
        FirmKind.MINER: 0.06,
        FirmKind.SEPARATOR: 0.06,
        FirmKind.MAGNET_MAKER: 0.08,
        FirmKind.RECYCLER: 0.03,
        FirmKind.MANUFACTURER: 0.77,
    }
    manuf_cells = [i for i, cell in enumerate(cells) if cell[0] == FirmKind.MANUFACTURER]
    # with too few firms, merge each country's sectors into one manufacturer cell
    if n_syn < len(cells):
        merged = []
        for _i, cell in enumerate(cells):
            if cell[0] != FirmKind.MANUFACTURER:
                merged.append(cell)
        for c in range(C):
            tot = sum(cells[i][3] for i in manuf_cells if cells[i][1] == c)
            if tot > 0:
                merged.append((FirmKind.MANUFACTURER, c, -2, tot, 0.0, False))
        cells = merged
    # producers first, manufacturers last: the model works on the two blocks as slices
    cells.sort(key=lambda cell: cell[0] == FirmKind.MANUFACTURER)
    if n_syn < len(cells):
        raise ScenarioError(
            f"firms: {scn.firms} is too few for this scenario; allowed at least "
            f"{len(cells) + n_named} (one per country, kind and sector cell plus named firms)"
        )
    weights = np.array([kind_weight[k] * np.sqrt(cap) for k, _, _, cap, _, _ in cells])
    # normalise weights within kinds to the kind shares
    kinds = np.array([int(k) for k, *_ in cells])
    w = np.zeros(len(cells))
    for k, share in kind_weight.items():
        m = kinds == int(k)
        if m.any():
            w[m] = weights[m] / weights[m].sum() * share
    counts = _allocate(w, n_syn)

    n = scn.firms
    st = FirmState(
        kind=np.zeros(n, dtype=np.int8),
        country=np.zeros(n, dtype=np.int16),
        named=np.full(n, -1, dtype=np.int32),
        active=np.ones(n, dtype=bool),
        prospect=np.zeros(n, dtype=bool),
        online_month=np.zeros(n, dtype=np.int32),
        capacity=np.zeros(n),
        prospect_size=np.zeros(n),
        prospect_cost=np.zeros(n),
        basket=np.zeros((n, G)),
        unit_cost=np.zeros(n),
        cash=np.zeros(n),
        stock=np.zeros((n, I)),
        idle=np.zeros(n, dtype=bool),
        loss_months=np.zeros(n, dtype=np.int32),
        expected_margin=np.zeros(n),
        proj_size=np.zeros(n),
        proj_left=np.zeros(n, dtype=np.int32),
        proj_capex_left=np.zeros(n),
        proj_bad_months=np.zeros(n, dtype=np.int32),
        use_tpy=np.zeros((n, I)),
        sector_mix=np.zeros((n, S)),
        value_per_kg=np.zeros(n),
        risk_sensitivity=np.ones(n),
        price_floor=np.zeros(n),
        price_floor_good=np.ones(n, dtype=np.int8),
        ht_share=np.full(n, HT_SHARE_OF_MAGNETS),
        bankrupt_month=np.full(n, -1, dtype=np.int32),
        permitted=np.zeros(n, dtype=bool),
        build_months=np.zeros(n, dtype=np.int32),
        ramp_cap=np.zeros(n),
        ramp_left=np.zeros(n, dtype=np.int32),
        exp_sales=np.zeros((n, I)),
        utilisation=np.ones(n),
        run_rate=np.full((n, G), 0.9),
    )
    names: list[str] = []
    row = 0
    for j, f in enumerate(named):
        kind = FirmKind[f.kind.upper()]
        st.kind[row] = kind
        st.country[row] = COUNTRIES.index(f.country)
        st.named[row] = j
        st.capacity[row] = f.capacity_t_per_year
        st.unit_cost[row] = f.cost_usd_per_kg
        st.cash[row] = f.cash_usd
        cp = scn.country(f.country)
        basket = np.array([f.ore_basket[g] for g in GOODS])
        if basket.sum() <= 0:
            basket = np.array([cp.ore_basket[g] for g in GOODS])
        st.basket[row] = basket / basket.sum()
        if f.online:
            st.online_month[row] = month_index(parse_month(f.online, "online"), start)
        st.permitted[row] = f.permitted
        st.build_months[row] = f.build_months
        if f.prospect:
            st.prospect[row] = True
            st.prospect_size[row] = f.capacity_t_per_year
            st.capacity[row] = 0.0
        names.append(f.name)
        row += 1
    for (kind, c, s, cap, cost, prospect), k in zip(cells, counts, strict=True):
        if k == 0:
            continue
        rows = slice(row, row + k)
        st.kind[rows] = kind
        st.country[rows] = c
        cp = scn.countries[c]
        # sizes vary across firms (lognormal), summing to the cell's total
        size = rng.lognormal(0.0, 0.5, k)
        size = size / size.sum() * cap
        if kind == FirmKind.MANUFACTURER:
            mix = np.zeros(S)
            if s >= 0:
                mix[s] = 1.0
            else:
                mix[:] = [cp.sector_shares[x] for x in SECTORS]
                mix /= mix.sum()
            st.sector_mix[rows] = mix
            st.use_tpy[rows] = use[c][None, :] * (size / use[c].sum())[:, None]
            st.value_per_kg[rows] = float(
                sum(mix[i] * cp.value_at_risk_usd_per_kg[x] for i, x in enumerate(SECTORS))
            )
        else:
            if prospect:
                st.prospect[rows] = True
                st.prospect_size[rows] = size
            else:
                st.capacity[rows] = size
            st.unit_cost[rows] = cost * rng.lognormal(0.0, hetero, k)
            basket = np.array([cp.ore_basket[g] for g in GOODS])
            if kind == FirmKind.RECYCLER:
                basket = RECYCLE_BASKET
            st.basket[rows] = basket / basket.sum()
        st.risk_sensitivity[rows] = rng.lognormal(0.0, hetero, k)
        names.extend(
            f"{cp.name} {kind.name.lower()}{'/' + SECTORS[s] if s >= 0 else ''} #{i + 1}"
            for i in range(k)
        )
        row += k
    # magnet makers: grade split follows the world's magnet use
    world_mag = use[:, MAG_STD].sum() + use[:, MAG_HT].sum()
    if world_mag > 0:
        st.ht_share[:] = use[:, MAG_HT].sum() / world_mag
    # starting cash: half a year of output value at cost
    st.cash[:] += np.where(
        st.kind != FirmKind.MANUFACTURER, st.capacity * 1000 * st.unit_cost * 0.5, 0.0
    )
    st.active[:] = ~st.prospect
    st.active &= st.online_month <= 0
    st.prospect |= st.online_month > 0
    st.prospect_size = np.where(st.online_month > 0, st.capacity, st.prospect_size)
    st.capacity = np.where(st.online_month > 0, 0.0, st.capacity)
    return st, names


# ----------------------------------------------------------------------------- decisions


def output_composition(st: FirmState, mk) -> np.ndarray:
    """(N, I) tonnes of each item in one tonne of a firm's output (REO t, or magnet t)."""
    comp = np.zeros((st.n, I))
    miner = st.kind == FirmKind.MINER
    comp[:, 0:3] = st.basket * miner[:, None]
    proc = (st.kind == FirmKind.SEPARATOR) | (st.kind == FirmKind.RECYCLER)
    comp[:, 3:6] = st.basket * proc[:, None]
    mag = st.kind == FirmKind.MAGNET_MAKER
    comp[:, MAG_STD] = mag * (1 - st.ht_share)
    comp[:, MAG_HT] = mag * st.ht_share
    return comp


SUPPLY_MARGIN_BAND = 0.5
"""Operating margin at which a producer runs flat out (and minus it, at which it stops)."""


def supply_response(margin: np.ndarray) -> np.ndarray:
    """Share of capacity a producer runs at, given its operating margin (a supply curve).

    Linear from 0 at margin ``-SUPPLY_MARGIN_BAND`` to 1 at ``+SUPPLY_MARGIN_BAND``: firms keep
    running briefly below cost (contracts, fixed costs) and do not run flat out on a thin margin.
    With heterogeneous costs, the industry's supply rises smoothly with price.
    """
    return np.minimum(
        np.maximum((margin + SUPPLY_MARGIN_BAND) / (2 * SUPPLY_MARGIN_BAND), 0.0), 1.0
    )


def value_coefficients(st: FirmState, mk) -> np.ndarray:
    """(N, I) tonnes of each item a firm sells (+) or uses (-) per tonne of its output.

    The value added per kg of output at local prices ``p`` (US$/kg, by item) is then
    ``coef @ p``: miners sell their basket of concentrates; recyclers their basket of oxides;
    separators turn the concentrate mix into oxide at the separation yield; magnet makers turn
    NdPr and Dy/Tb oxide into their grade mix of magnets by the recipes in ``mk``.
    """
    coef = np.zeros((st.n, I))
    kind = st.kind
    miner = (kind == FirmKind.MINER)[:, None]
    rec = (kind == FirmKind.RECYCLER)[:, None]
    sep = (kind == FirmKind.SEPARATOR)[:, None]
    mag = kind == FirmKind.MAGNET_MAKER
    coef[:, 0:3] = np.where(miner, st.basket, 0.0) - np.where(sep, st.basket, 0.0)
    coef[:, 3:6] = np.where(rec, st.basket, 0.0) + np.where(
        sep, st.basket * mk.separation_yield, 0.0
    )
    ht = st.ht_share
    nd_std, nd_ht = mk.magnet_ndpr_t_per_t["ndpr_magnet"], mk.magnet_ndpr_t_per_t["heavy_magnet"]
    hv_std, hv_ht = mk.magnet_heavy_t_per_t["ndpr_magnet"], mk.magnet_heavy_t_per_t["heavy_magnet"]
    coef[mag, MAG_STD] = 1 - ht[mag]
    coef[mag, MAG_HT] = ht[mag]
    coef[mag, OXIDE[1]] = -((1 - ht[mag]) * nd_std + ht[mag] * nd_ht)
    coef[mag, OXIDE[2]] = -((1 - ht[mag]) * hv_std + ht[mag] * hv_ht)
    return coef


def output_value_usd_per_kg(
    st: FirmState, price_by_country: np.ndarray, mk, coef: np.ndarray | None = None
) -> np.ndarray:
    """(N,) value added per kg of output at the firm's local prices (output minus inputs).

    Args:
        st: firm arrays.
        price_by_country: (I, C) local prices, US$/kg.
        mk: market parameters (recipes and yields).
        coef: the firms' :func:`value_coefficients` if the caller keeps them (they are fixed
            while baskets and grade mixes are).
    """
    coef = value_coefficients(st, mk) if coef is None else coef
    p = np.take(price_by_country.T, st.country.astype(np.intp), axis=0)  # (N, I)
    return np.einsum("ni,ni->n", coef, p)
