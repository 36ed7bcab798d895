"""Kernels for step learn of a month (see abm.kernels).

``producer_learning`` is the per-producer part of ``RareEarthModel._learn`` in one pass over
the producers' rows: entrants' learning by doing (``_entrant_learning``), the refresh of
operating and full-cost margins (``_refresh_expectations`` after the start), then losses,
idling, restarts, bankruptcy, bad project months and recycling growth. Each row's steps only
read that row (and small per-country tables), so doing them row by row gives what the numpy
passes give column by column.
"""

from __future__ import annotations

import functools

import numpy as np

from abm.engine import jit
from abm.kernels.common import maximum


@jit
def _dot8(coef, r, c5, price, c):
    """``np.einsum("ni,ni->n", coef, p)[r]`` for 8 items, ``p[r] = price[:, c]``, in its order.

    numpy's two-operand loop for contiguous rows adds the products in two lanes (the even and
    the odd items), each from its last item down onto 0.0, then the two lanes onto the 0.0 the
    output starts at; ``c5`` stands for ``coef[r, 5]``.
    """
    lane0 = coef[r, 6] * price[6, c] + 0.0
    lane0 = coef[r, 4] * price[4, c] + lane0
    lane0 = coef[r, 2] * price[2, c] + lane0
    lane0 = coef[r, 0] * price[0, c] + lane0
    lane1 = coef[r, 7] * price[7, c] + 0.0
    lane1 = c5 * price[5, c] + lane1
    lane1 = coef[r, 3] * price[3, c] + lane1
    lane1 = coef[r, 1] * price[1, c] + lane1
    return 0.0 + (lane0 + lane1)


@jit
def _dot8_rows(a, b):
    """``_dot8`` of every row of two (n, 8) arrays (``b`` as the prices of country 0 per row)."""
    n = a.shape[0]
    out = np.empty(n)
    for r in range(n):
        out[r] = _dot8(a, r, a[r, 5], b[r].reshape((8, 1)), 0)
    return out


@functools.cache
def einsum_order() -> bool:
    """Whether ``_dot8`` gives numpy's ``np.einsum("ni,ni->n")`` here, bit for bit.

    It does with numpy's x86-64 builds (two-lane SSE loops, no fused multiply-add); a build whose
    loop differs (wider lanes, or fused multiply-add as on ARM) fails this check, and the
    kernel then takes the value added numpy computed.
    """
    rng = np.random.default_rng(0)
    a, b = (
        rng.standard_normal((4096, 8)) * np.exp(4 * rng.standard_normal((4096, 8))) for _ in "ab"
    )
    return bool(np.array_equal(np.einsum("ni,ni->n", a, b), _dot8_rows(a, b)))


@jit
def producer_learning(
    kind_mag,
    kind_rec,
    country,
    basket,
    price_floor,
    price_floor_good,
    price,
    coef,
    thrift,
    hv,
    value_in,
    sub,
    has_sub,
    capital,
    speed,
    learns,
    entrant,
    units,
    cum_units,
    cost0,
    wright,
    floor_share,
    unit_cost,
    expected_margin,
    op_margin,
    active,
    idle,
    capacity,
    loss,
    must_run,
    can_shut,
    idle_after,
    restart_cost_share,
    restart_due,
    debt_years,
    cash,
    after_loss,
    prospect_size,
    prospect,
    bankrupt_month,
    permitted,
    proj_size,
    proj_capex_left,
    proj_bad,
    month,
    growth_rate,
    kg_per_t,
    n_c,
):
    """One month of the producers' (rows ``0..P-1``) learning, in place.

    Per row, in the order of the numpy code:

    - learning by doing, when ``learns`` and some entrant produced: a first output fixes
      ``cost0``; cumulative output grows by ``units``; past a year at capacity the unit cost
      becomes ``max(unit_cost * wright[r], floor_share * cost0)``, where ``wright`` holds the
      factors ``(cum_new / max(cum_old, 1e-12)) ** -b`` computed by numpy before the call
      (numpy's vectorised power and the C library's can differ in the last bit);
    - margins at the expected prices ``price`` (I, C): value added = ``coef[r] @ price[:, c]``
      summed in the order ``np.einsum("ni,ni->n")`` uses for 8 contiguous items (two lanes of
      even and odd items, each added from the last item down, then the lanes), where Dy/Tb
      thrifting replaces a magnet maker's Dy/Tb coefficient by ``-hv[r]`` (or ``value_in[r]``
      where numpy's order is another: see :func:`einsum_order`); plus a guaranteed
      price's top-up and a recycling subsidy; ``op_margin = (value - cost) / max(cost, 1e-9)``,
      the full-cost margin likewise with ``capital`` added to the cost, and the expected margin
      moves toward it by ``speed``;
    - loss months, idling (mines and recyclers only), restarts (their cost into
      ``restart_due``), bankruptcy (the row becomes an undeveloped prospect), bad project
      months, and recyclers' capacity growth while recycling pays.

    Returns:
        (number of bankruptcies, the bankrupt rows' cash before write-off in row order,
        bankruptcies per country).
    """
    n = country.shape[0]
    any_ent = False
    if learns:  # _entrant_learning returns before any change when no entrant produced
        for r in range(n):
            if entrant[r] and units[r] > 0:
                any_ent = True
                break
    broke_cash = np.empty(n)
    broke_c = np.zeros(n_c, dtype=np.int64)
    n_broke = 0
    any_restart = False
    restarted = np.zeros(n, dtype=np.bool_)
    for r in range(n):
        c = country[r]
        uc = unit_cost[r]
        # ---- learning by doing (Wright's law)
        if any_ent:
            ent = entrant[r] and units[r] > 0
            cum_old = cum_units[r]
            if ent and cum_old <= 0:
                cost0[r] = uc
            cum_new = cum_old + (units[r] if ent else 0.0)
            cum_units[r] = cum_new
            ref = capacity[r]
            if ent and cum_old >= ref and ref > 0:
                cut = uc * wright[r]
                uc = maximum(cut, floor_share * cost0[r])
                unit_cost[r] = uc
        # ---- margins: value added per kg at the expected local prices
        if value_in.shape[0]:  # numpy's einsum, where its order is not _dot8's (einsum_order)
            value = value_in[r]
        else:
            c5 = -hv[r] if thrift and kind_mag[r] else coef[r, 5]
            value = _dot8(coef, r, c5, price, c)
        if price_floor[r] > 0:  # a guaranteed price tops up the covered oxide's value
            g = np.intp(price_floor_good[r])
            gain = maximum(price_floor[r] - price[3 + g, c], 0.0)
            value += gain * basket[r, g]
        if has_sub and kind_rec[r]:
            value += sub[c]
        full = uc + capital[r]
        margin = (value - full) / maximum(full, 1e-9)
        om = (value - uc) / maximum(uc, 1e-9)
        op_margin[r] = om
        em = expected_margin[r] + speed * (margin - expected_margin[r])
        expected_margin[r] = em
        # ---- losses, idling, restarts
        cap = capacity[r]
        act = active[r]
        idl = idle[r]
        producing = act and not idl and cap > 0
        lm = loss[r]
        if producing and om < 0:
            lm = lm + 1
        elif producing:
            lm = 0
        if producing and can_shut[r] and not must_run[r] and lm >= idle_after:
            idl = True
        if idl and act and om > 0.1 and em > -0.2:  # a restart
            any_restart = True
            restarted[r] = True
            restart_due[r] += restart_cost_share * cap * kg_per_t * uc
            idl = False
            lm = 0
        if idl:  # one more month idle
            lm += 1
        idle[r] = idl
        loss[r] = lm
        # ---- bankruptcy: the assets pass to a new owner as an undeveloped prospect
        debt_limit = debt_years * cap * kg_per_t * uc
        if act and cash[r] < -debt_limit and lm >= after_loss:
            broke_cash[n_broke] = cash[r]
            n_broke += 1
            broke_c[c] += 1
            cash[r] = 0.0
            prospect_size[r] = cap
            cap = 0.0
            capacity[r] = 0.0
            act = False
            active[r] = False
            idle[r] = False
            prospect[r] = True
            bankrupt_month[r] = month
            permitted[r] = True
            proj_size[r] = 0.0
            proj_capex_left[r] = 0.0
        if proj_size[r] > 0 and em < 0:
            proj_bad[r] += 1
        else:
            proj_bad[r] = 0
        # ---- recycling capacity grows while recycling pays
        if kind_rec[r] and act:
            grow = om
            if grow < 0.0:  # np.minimum(np.maximum(om, 0), 1) (nan stays nan)
                grow = 0.0
            if grow > 1.0:
                grow = 1.0
            capacity[r] = cap * (1.0 + grow * growth_rate)
    if any_restart:  # the numpy code then adds 0.0 to every other row's restart cost
        for r in range(n):
            if not restarted[r]:
                restart_due[r] += 0.0
    return n_broke, broke_cash[:n_broke].copy(), broke_c
