"""Kernels for step orders of a month (see abm.kernels)."""

from __future__ import annotations

import numpy as np  # noqa: F401

from abm.engine import jit  # noqa: F401


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
