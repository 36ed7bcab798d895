"""Monthly reporters: what the model writes into ``timeseries.parquet`` (see docs/OUTPUTS.md).

Each reporter is a plain module-level function of the model; all per-country numbers come from
arrays with ``np.bincount`` so recording costs the same whatever the number of firms.
"""

from __future__ import annotations

import numpy as np

from abm.constants import (
    CHINA,
    ITEM_GOOD,
    ITEM_STAGE,
    OXIDE,
    C,
    G,
    I,
    S,
)
from abm.market import stacked
from abm.recorder import Recorder, dims

_CTRY = np.arange(C)
_IS_NOT_CHINA = _CTRY != CHINA
_NOT_CHINA = np.flatnonzero(_IS_NOT_CHINA)
_STAGES3 = np.arange(3)  # mining, separation, magnets
_IDX_ITEM_GOOD = np.array(ITEM_GOOD)
_IDX_ITEM_STAGE = np.array(ITEM_STAGE)
SEG_CHINA, SEG_WORLD, SEG_LOCAL = 0, 1, 2
_GRID_IC = np.meshgrid(np.arange(I), _CTRY, indexing="ij")
_GRID_CS = np.meshgrid(_CTRY, np.arange(4), indexing="ij")
# dimension codes of the fixed-shape blocks, built once (they are the same every month)
_GC, _GI = (a.ravel() for a in np.meshgrid(_CTRY, np.arange(I), indexing="ij"))
_DIMS_CI = dims(country=_GC, good=_IDX_ITEM_GOOD[_GI], stage=_IDX_ITEM_STAGE[_GI])
_GRID_I_RAVEL = _GRID_IC[0].ravel()
_PRICE_CHINA = dims(good=_IDX_ITEM_GOOD, stage=_IDX_ITEM_STAGE, segment=SEG_CHINA)
_PRICE_WORLD = dims(good=_IDX_ITEM_GOOD, stage=_IDX_ITEM_STAGE, segment=SEG_WORLD)
_PRICE_LOCAL = dims(
    good=_IDX_ITEM_GOOD[_GRID_I_RAVEL],
    stage=_IDX_ITEM_STAGE[_GRID_I_RAVEL],
    country=_GRID_IC[1].ravel(),
    segment=SEG_LOCAL,
)
_CG_C, _CG_G = np.meshgrid(_CTRY, np.arange(G), indexing="ij")
_CG = dims(country=_CG_C.ravel(), good=_CG_G.ravel())
_RC, _RX = np.meshgrid(_CTRY, _CTRY, indexing="ij")
_OFF = _RC != _RX
_RISK_DIMS = dims(country=_RC[_OFF], partner=_RX[_OFF])
_LS_C, _LS_S = np.meshgrid(_CTRY, np.arange(S), indexing="ij")
_LOST_DIMS = dims(country=_LS_C.ravel(), sector=_LS_S.ravel())
_CS_DIMS = dims(country=_GRID_CS[0].ravel(), stage=_GRID_CS[1].ravel())
_BY_COUNTRY = dims(country=_CTRY)


def _quotas_in_force(model) -> tuple[np.ndarray, np.ndarray]:
    """The export quotas in force (t/yr) and their exporters: kept until the measures change."""
    q = model.policy.quota_t_per_year()
    has = np.isfinite(q).nonzero()[0]
    return q[has], has


def world_price(model, clearings) -> np.ndarray:
    """(I,) tonnage-weighted price outside China (buyers' local prices, weighted by purchases)."""
    # all items at once: each row sums its own 8 values, as the per-item sums did
    w = stacked(clearings, "bought").copy()  # (I, C)
    w[:, CHINA] = 0.0
    p = model.price
    num = (p * w).sum(axis=1)
    den = w.sum(axis=1)
    bought = den > 0
    if bought.all():  # the usual case: no fallback needed (np.where would pick num / den)
        return num / den
    # the unweighted mean where nothing was bought (sum / count: what ndarray.mean computes,
    # without its wrapper's overhead)
    fallback = p[:, _NOT_CHINA].sum(axis=1) / _NOT_CHINA.size
    return np.where(bought, num / np.where(bought, den, 1.0), fallback)


def record_month(model, rec: Recorder, month: int) -> None:
    """Write one month of every output variable."""
    flows = model.flows
    f = model.firms
    cls = flows.clearings
    # prices: China domestic, world (ex-China), and each country's local price
    wp = world_price(model, cls)
    # (blocks whose dimensions are the same every month take them built once: add_block)
    rec.add_block(month, "price", model.price[:, CHINA], _PRICE_CHINA)
    rec.add_block(month, "price", wp, _PRICE_WORLD)
    rec.add_block(month, "price", model.price.ravel(), _PRICE_LOCAL)
    # production, exports, imports by country x item
    rec.add_block(month, "production_t", flows.production.ravel(), _DIMS_CI)
    trade = stacked(cls, "flows").copy()  # (I, C, C), domestic sales set to 0 below
    trade.reshape(I, C * C)[:, :: C + 1] = 0.0  # the diagonals, through a strided view
    leaked = stacked(cls, "leaked")
    exports = np.ascontiguousarray(trade.sum(axis=2).T)  # (C, I)
    imports = np.ascontiguousarray(trade.sum(axis=1).T)
    rec.add_block(month, "exports_t", exports.ravel(), _DIMS_CI)
    rec.add_block(month, "imports_t", imports.ravel(), _DIMS_CI)
    ii, xx, yy = np.nonzero(trade > 1e-9)
    rec.add(
        month,
        "trade_t",
        trade[ii, xx, yy],
        country=xx,
        partner=yy,
        good=_IDX_ITEM_GOOD[ii],
        stage=_IDX_ITEM_STAGE[ii],
    )
    ii, xx, yy = np.nonzero(leaked > 1e-9) if leaked.any() else ((),) * 3
    if len(ii):
        rec.add(
            month,
            "leaked_t",
            leaked[ii, xx, yy],
            country=xx,
            partner=yy,
            good=_IDX_ITEM_GOOD[ii],
            stage=_IDX_ITEM_STAGE[ii],
        )
    rec.add_block(month, "consumption_t", flows.consumption.ravel(), _CG)
    rec.add_block(month, "recycled_t", flows.recycled.ravel(), _CG)
    # quotas in force
    quotas, has = model.policy.memo("export_quota_recorded", lambda: _quotas_in_force(model))
    if has.size:
        rec.add(month, "export_quota_t", quotas, country=has)
    # China's share of world output by stage (mining, separation, magnets)
    prod = flows.production
    # indexing with a list of columns gave an F-ordered copy, summed in memory order: the rows
    # of a stage in one transposed C copy hold the same order, so each sum is the same bits
    prod_t = prod.T.copy()  # (I, C)
    shares = []
    for a, b in ((0, 3), (3, 6), (6, 8)):
        tot = prod_t[a:b].sum()
        shares.append(prod[CHINA, a:b].sum() / tot if tot > 0 else np.nan)
    rec.add(month, "china_share", shares, country=CHINA, stage=_STAGES3)
    # each country's dependence on China: share of its concentrate+oxide imports (t REO)
    imp = imports[:, 0:6].sum(axis=1)
    from_cn = trade[0:6, CHINA, :].sum(axis=0)
    some = imp > 1e-9
    dep = np.where(some, from_cn / np.where(some, imp, 1.0), np.nan)
    others = (_IS_NOT_CHINA & np.isfinite(dep)).nonzero()[0]  # countries that imported
    rec.add(month, "import_share_from_china", dep[others], country=others, partner=CHINA)
    # inventories in months of use (manufacturers' REO content), stockpiles
    mf, pr = model.makers, model.producers
    mj = model._mj  # the items manufacturers hold (the others are 0 for them)
    inv = model.sum_makers(f.stock[mf, mj]) @ model.reo_per_item[mj]
    use = model.maker_use_reo  # (C, G) t REO per month at intensity 1, fixed
    use = use * model.use_growth(month)
    has = use > 1e-9  # countries and goods with manufacturers using them
    months_cover = inv[has] / use[has]
    rec.add(month, "inventory_months", months_cover, country=_CG_C[has], good=_CG_G[has])
    pile = np.array([st.stockpile_t for st in model.states])
    rec.add_block(month, "stockpile_t", pile.ravel(), _CG)
    # capacity online, under construction and idle by country and stage (3 = recycling)
    # producers' home country x 4 + stage (0 mine, 1 separate, 2 magnet, 3 recycle): fixed
    key = model.__dict__.get("_capacity_key")
    if key is None:
        key = model._capacity_key = f.country[pr].astype(int) * 4 + f.kind[pr].astype(int)
    if model._k is not None:  # the same sums, fused (abm.kernels.collect)
        args = (f.capacity, f.active, f.idle, f.proj_size, key, 4 * C)
        online, building, idle = model._k.collect.capacity_totals(*args)
    else:
        cap = f.capacity[pr] * f.active[pr]
        online = np.bincount(key, weights=cap, minlength=4 * C)
        building = np.bincount(key, weights=f.proj_size[pr], minlength=4 * C)
        idle = np.bincount(key, weights=cap * f.idle[pr], minlength=4 * C)
    rec.add_block(month, "capacity_t_per_year", online, _CS_DIMS)
    rec.add_block(month, "construction_t_per_year", building, _CS_DIMS)
    rec.add_block(month, "idle_capacity_t_per_year", idle, _CS_DIMS)
    rec.add_block(month, "bankruptcies", model.bankruptcies, _BY_COUNTRY)
    # intensity and perceived risk
    # use-weighted mean over a country's manufacturers, who all hold the country's intensity
    dims_m = model.__dict__.get("_intensity_dims")
    if dims_m is None:  # countries with manufacturers and their use weights are fixed
        has_m = np.flatnonzero(model.makers_per_country > 0)
        w_ = model.maker_weight_by_country[has_m, None]
        dims_m = (has_m, w_ > 0, np.repeat(has_m, G), np.tile(np.arange(G), has_m.size))
        model._intensity_dims = dims_m
    has_m, weighted, c_m, g_m = dims_m
    inten = np.where(weighted, model.intensity_c[has_m], np.nan)
    rec.add(month, "intensity_index", inten.ravel(), country=c_m, good=g_m)
    risk = model.risk_by_country()
    rec.add_block(month, "perceived_risk", risk[_OFF], _RISK_DIMS)
    # lost output by country and sector
    rec.add_block(month, "lost_output_usd", flows.lost_usd.ravel(), _LOST_DIMS)
    # restrictions in force: share of each exporter's normal flow blocked, per partner
    r = flows.restriction
    ex = (r.max(axis=1) > 0).nonzero()[0]
    for x in ex:
        ys = (r[x] > 0).nonzero()[0]
        rec.add(month, "restriction", r[x, ys], country=x, partner=ys)
    rec.add_block(month, "revenue_usd", flows.revenue, _BY_COUNTRY)
    rec.add_block(month, "budget_usd", [st.budget_usd for st in model.states], _BY_COUNTRY)
    fill_ox = model.fill[:, OXIDE[0] : OXIDE[-1] + 1]
    rec.add_block(month, "fill_rate", fill_ox.ravel(), _CG)
    for d in model.policy.disputes.values():
        rec.add(
            month, "tension", d.tension if d.active else 0.0, country=d.coercer, partner=d.target
        )
        rec.add(
            month,
            "concession",
            1.0 if d.conceded_month is not None else 0.0,
            country=d.target,
            partner=d.coercer,
        )
