"""Kernels for step 4 of a month, orders (see :mod:`abm.kernels`).

``manufacturer_orders``: manufacturers' need and orders for the items they use;
``producer_orders``: separators' concentrate and magnet makers' oxide orders. Both are one pass
over their rows with the float64 operations of the numpy code in ``RareEarthModel._set_orders``.
"""

from __future__ import annotations

import numpy as np

from abm.engine import jit
from abm.kernels.common import maximum, minimum


@jit
def manufacturer_orders(monthly_use, per_c, risk_c, c_of, sens, base, adjust, stock, row0, col0):
    """Manufacturers' need and orders for the items they use, and a copy of their stock of them.

    The numpy code in ``RareEarthModel._set_orders``, fused: for manufacturer ``r`` (row
    ``row0 + r`` of ``stock``, country ``c_of[r]``) and item ``j`` (column ``col0 + j``),
    ``need = monthly_use * per_c[c]`` and ``order = max(need + ((risk_c[c] * sens + base) *
    need - stock) / adjust, 0)`` where ``need > 0``, else 0.

    Returns:
        (need, orders, stock copy), each (M, J).
    """
    m, nj = monthly_use.shape
    need = np.empty((m, nj))
    orders = np.empty((m, nj))
    held = np.empty((m, nj))
    for r in range(m):
        c = c_of[r]
        s = sens[r]
        for j in range(nj):
            nd = monthly_use[r, j] * per_c[c, j]
            need[r, j] = nd
            st = stock[row0 + r, col0 + j]
            held[r, j] = st
            g = risk_c[c, j] * s
            g += base
            g *= nd
            g -= st
            g /= adjust
            g += nd
            if g < 0.0:  # np.maximum(g, 0.0) (nan stays nan)
                g = 0.0
            g *= 1.0 if nd > 0.0 else 0.0
            orders[r, j] = g
    return need, orders, held


@jit
def _plan(exp, held, cap, probe, stock_months, probe_share):
    """``RareEarthModel._sales_plan`` of one value, within ``[0, cap]``.

    Expected sales (at least ``probe_share`` of ``probe``) plus half the gap to
    ``1 + stock_months`` months of them.
    """
    exp = maximum(exp, probe_share * probe)
    target = (1.0 + stock_months) * exp
    out = exp + (target - held) / 2.0
    if out < 0.0:  # np.maximum(out, 0.0, out=out) (nan stays nan)
        out = 0.0
    return minimum(out, cap)


@jit
def producer_orders(
    sep,
    mag,
    capacity,
    ramp_cap,
    ramp_left,
    ramp,
    active,
    idle,
    exp_sales,
    stock,
    basket,
    run_rate,
    nd,
    hv,
    months,
    share,
    separation_yield,
    base,
    adjust,
):
    """Separators' and magnet makers' orders for their inputs, (P, I) (0 for other producers).

    The numpy code in ``RareEarthModel._producer_orders``, fused per producer row ``r``: the
    monthly capacity (``_monthly_capacity``), the oxide output planned (``_sales_plan``) and its
    concentrate input within the run rate's room, the magnets planned (``_magnet_plan``) and
    their NdPr and Dy/Tb oxide; each input ordered as ``max(use + (base * use - stock) /
    adjust, 0)``. The per-row sum of the three concentrate inputs is added left to right, as
    numpy's ``sum(axis=1)`` over 3 columns does. ``months`` and ``share`` are the producers'
    stock months and the probe share of ``_sales_plan``.
    """
    n = sep.shape[0]
    orders = np.zeros((n, 8))
    for r in range(n):
        # t per month the producer can make: running capacity less what is still ramping
        cap = capacity[r] - ramp_cap[r] * (ramp_left[r] / ramp)
        monthly = maximum(cap, 0.0) / 12.0 if active[r] and not idle[r] else 0.0
        if sep[r]:  # concentrate to run at the rate the margin supports
            i0 = _plan(exp_sales[r, 3], stock[r, 3], monthly, monthly * basket[r, 0], months, share)
            i1 = _plan(exp_sales[r, 4], stock[r, 4], monthly, monthly * basket[r, 1], months, share)
            i2 = _plan(exp_sales[r, 5], stock[r, 5], monthly, monthly * basket[r, 2], months, share)
            i0 /= separation_yield
            i1 /= separation_yield
            i2 /= separation_yield
            tot = i0 + i1 + i2
            room = monthly * run_rate[r, 0]
            scale = room / maximum(tot, 1e-12) if tot > room else 1.0
            i0 *= scale
            i1 *= scale
            i2 *= scale
            orders[r, 0] = maximum(i0 + (base * i0 - stock[r, 0]) / adjust, 0.0)
            orders[r, 1] = maximum(i1 + (base * i1 - stock[r, 1]) / adjust, 0.0)
            orders[r, 2] = maximum(i2 + (base * i2 - stock[r, 2]) / adjust, 0.0)
        if mag[r]:  # NdPr and Dy/Tb oxide for the magnets planned
            exp = exp_sales[r, 6] + exp_sales[r, 7]
            held = stock[r, 6] + stock[r, 7]
            make = _plan(exp, held, monthly, monthly, months, share)
            w = make * nd[r]
            orders[r, 4] = maximum(w + (base * w - stock[r, 4]) / adjust, 0.0)
            w = make * hv[r]
            orders[r, 5] = maximum(w + (base * w - stock[r, 5]) / adjust, 0.0)
    return orders
