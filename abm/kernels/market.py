"""Kernels for step 5 of a month, market clearing (see :mod:`abm.kernels`).

At 8 items x 8 countries x 8 countries the numpy code's cost is its calls, not its arithmetic:
a round of export requests is about twenty numpy calls on 512 numbers. The kernels below do the
same float64 operations in the same order. Where numpy sums along a contiguous axis it uses its
pairwise summation (eight running sums per block, then a fixed tree), which
:func:`abm.kernels.common.pairwise_sum` reproduces, so the sums agree bit for bit; a sum across
rows (along a strided axis) is a plain running sum in numpy and here.
"""

from __future__ import annotations

import numpy as np

from abm.engine import jit
from abm.kernels.common import pairwise_sum

_EPS = 1e-9  # abm.market._EPS


@jit
def export_rounds(m_rem0, e_rem, s_left, same, cap, trade, pref, rounds):
    """``abm.market._export_rounds``, in place on ``e_rem``, ``s_left``, ``cap`` and ``trade``.

    ``same`` says ``s_left`` is ``e_rem`` (no quota in force: one array, updated once). The
    requests of a round live in one flat (K * C * C) array so that its sums run over the same
    contiguous values as numpy's.
    """
    k_n, n = e_rem.shape
    nn = n * n
    m_rem = m_rem0.copy()
    avail = np.empty((k_n, n, n))
    tot = np.empty((k_n, n))
    f = np.empty(k_n * nn)
    out = np.empty((k_n, n))
    for _ in range(rounds):
        # importers ask exporters with stock left on routes with room, in proportion to stock
        # times preference
        for k in range(k_n):
            for x in range(n):
                sx = s_left[k, x] * (1.0 if e_rem[k, x] > _EPS else 0.0)
                for y in range(n):
                    v = sx * pref[k, x, y]
                    avail[k, x, y] = v if cap[k, x, y] > _EPS else 0.0
        for k in range(k_n):  # numpy's sum over axis 1: a running sum down the rows
            for y in range(n):
                tot[k, y] = avail[k, 0, y]
            for x in range(1, n):
                for y in range(n):
                    tot[k, y] += avail[k, x, y]
        asked = False
        for k in range(k_n):
            for x in range(n):
                for y in range(n):
                    req = m_rem[k, y] * avail[k, x, y]
                    if req != 0.0:  # np.any (nan counts)
                        asked = True
                    t = tot[k, y]
                    req = req / t if t > _EPS else 0.0
                    c = cap[k, x, y]
                    f[k * nn + x * n + y] = req if (req <= c or req != req) else c  # np.minimum
        if not asked:
            break
        for k in range(k_n):
            for x in range(n):
                o = pairwise_sum(f, k * nn + x * n, n)
                e = e_rem[k, x]
                if o > e:  # exporters asked for more than they may ship scale down
                    sc = e / (o if o > _EPS else 1.0)
                    for y in range(n):
                        f[k * nn + x * n + y] *= sc
        if pairwise_sum(f, 0, k_n * nn) <= _EPS:
            break
        for k in range(k_n):
            for x in range(n):
                for y in range(n):
                    trade[k, x, y] += f[k * nn + x * n + y]
                out[k, x] = pairwise_sum(f, k * nn + x * n, n)
                e = e_rem[k, x] - out[k, x]
                e_rem[k, x] = 0.0 if e < 0.0 else e
                if not same:
                    s = s_left[k, x] - out[k, x]
                    s_left[k, x] = 0.0 if s < 0.0 else s
        for k in range(k_n):  # m_rem - f.sum(axis=1): a running sum down the rows
            for y in range(n):
                got = f[k * nn + y]
                for x in range(1, n):
                    got += f[k * nn + x * n + y]
                m = m_rem[k, y] - got
                m_rem[k, y] = 0.0 if m < 0.0 else m
        for k in range(k_n):
            for x in range(n):
                for y in range(n):
                    cap[k, x, y] -= f[k * nn + x * n + y]


@jit
def _tot_down(a, k, y, n):
    """``a[k].sum(axis=0)[y]`` for a (K, n, n) array: numpy's running sum down the rows."""
    s = a[k, 0, y]
    for x in range(1, n):
        s += a[k, x, y]
    return s


@jit
def clear_after_contracts(
    s_rem,
    d_rem,
    quota,
    flows,
    buyer_paid,
    price,
    access,
    leaky,
    tax,
    pref,
    leakage_premium,
    transport_share,
    rounds,
    home_bias,
):
    """``abm.market._clear_after_contracts``: steps 2-4 and the payments, the same arithmetic.

    ``s_rem``, ``d_rem``, ``quota``, ``flows`` and ``buyer_paid`` are updated in place.
    """
    k_n, n = s_rem.shape
    kg = 1000.0  # abm.constants.KG_PER_T
    # 2. domestic
    share = home_bias < 1.0
    first_claim = np.empty((k_n, n))
    dom = np.empty((k_n, n))
    for k in range(k_n):
        if share:
            s_tot = pairwise_sum(s_rem[k], 0, n)
            d_tot = pairwise_sum(d_rem[k], 0, n)
            ratio = 1.0
            if d_tot > _EPS:
                ratio = s_tot / (d_tot if d_tot >= _EPS else _EPS)
                if not (ratio <= 1.0 or ratio != ratio):
                    ratio = 1.0
            mult = home_bias + (1.0 - home_bias) * ratio
        for x in range(n):
            claim = d_rem[k, x] * mult if share else d_rem[k, x]
            first_claim[k, x] = claim
            s = s_rem[k, x]
            dom[k, x] = s if (s <= claim or s != s) else claim
    for k in range(k_n):
        for x in range(n):
            v = dom[k, x]
            flows[k, x, x] += v
            buyer_paid[k, x, x] += v * kg * price[k, x]
            s_rem[k, x] -= v
            d_rem[k, x] -= v
    # 3. exports
    e_rem = np.empty((k_n, n))
    all_inf = True
    for k in range(k_n):
        for x in range(n):
            q = quota[k, x]
            if q != np.inf:
                all_inf = False
            q = q if q >= 0.0 or q != q else 0.0
            s = s_rem[k, x]
            e_rem[k, x] = s if (s <= q or s != s) else q
    cap = np.empty((k_n, n, n))
    for k in range(k_n):
        for y in range(n):
            wsum = 0.0
            for x in range(n):  # w[k, x, y] = s_rem[k, x] off the diagonal, else 0
                w = s_rem[k, x] if x != y else 0.0
                wsum = w if x == 0 else wsum + w
            for x in range(n):
                if x == y:
                    cap[k, x, y] = 0.0
                    continue
                a = access[k, x, y]
                if a < 1.0:
                    w = s_rem[k, x]
                    normal = (w / wsum if wsum > _EPS else 0.0) * d_rem[k, y]
                    cap[k, x, y] = a * normal
                else:
                    cap[k, x, y] = np.inf
    s_left = e_rem if all_inf else s_rem.copy()
    trade = np.zeros((k_n, n, n))
    if share:
        m_first = np.empty((k_n, n))
        for k in range(k_n):
            for x in range(n):
                v = first_claim[k, x] - dom[k, x]
                v = v if v >= 0.0 or v != v else 0.0
                d = d_rem[k, x]
                m_first[k, x] = v if (v <= d or v != v) else d
        export_rounds(m_first, e_rem, s_left, all_inf, cap, trade, pref, rounds)
        m_rest = np.empty((k_n, n))
        for k in range(k_n):
            for y in range(n):
                v = d_rem[k, y] - _tot_down(trade, k, y, n)
                m_rest[k, y] = v if v >= 0.0 or v != v else 0.0
        export_rounds(m_rest, e_rem, s_left, all_inf, cap, trade, pref, rounds)
    else:
        export_rounds(d_rem, e_rem, s_left, all_inf, cap, trade, pref, rounds)
    any_leak = False
    for k in range(k_n):
        for x in range(n):
            for y in range(n):
                if leaky[k, x, y]:
                    any_leak = True
    leak = np.zeros((k_n, n, n))
    for k in range(k_n):
        for x in range(n):
            for y in range(n):
                t = trade[k, x, y]
                flows[k, x, y] += t
                unit = price[k, y] * kg
                if any_leak:
                    lk = t if (leaky[k, x, y] and x != y) else 0.0
                    leak[k, x, y] = lk
                    buyer_paid[k, x, y] += t * unit + lk * unit * leakage_premium
                else:
                    buyer_paid[k, x, y] += t * unit
    for k in range(k_n):
        for x in range(n):
            s_rem[k, x] -= pairwise_sum(trade[k, x], 0, n)
        for y in range(n):
            d_rem[k, y] -= _tot_down(trade, k, y, n)
    if share:  # 4. what is left is sold at home
        for k in range(k_n):
            for x in range(n):
                s = s_rem[k, x]
                s = s if s >= 0.0 or s != s else 0.0
                d = d_rem[k, x]
                d = d if d >= 0.0 or d != d else 0.0
                v = s if (s <= d or s != s) else d
                flows[k, x, x] += v
                buyer_paid[k, x, x] += v * kg * price[k, x]
                s_rem[k, x] -= v
                d_rem[k, x] -= v
    # payments
    any_tax = False
    for k in range(k_n):
        for x in range(n):
            if tax[k, x] != 0.0:
                any_tax = True
    seller_got = np.empty((k_n, n, n))
    tax_m = np.zeros((k_n, n, n))
    freight_m = np.empty((k_n, n * n))
    for k in range(k_n):
        for x in range(n):
            rate = tax[k, x] / (1.0 + tax[k, x])
            for y in range(n):
                bp = buyer_paid[k, x, y]
                intl = bp * (1.0 if x != y else 0.0)
                fm = intl * transport_share
                freight_m[k, x * n + y] = fm
                if any_tax:
                    tm = (intl - fm) * rate
                    tax_m[k, x, y] = tm
                    seller_got[k, x, y] = bp - fm - tm
                else:
                    seller_got[k, x, y] = bp - fm
    quota_binding = np.empty((k_n, n), dtype=np.bool_)
    tax_got = np.empty((k_n, n))
    sold = np.empty((k_n, n))
    bought = np.empty((k_n, n))
    unmet = np.empty((k_n, n))
    unsold = np.empty((k_n, n))
    freight = np.empty(k_n)
    for k in range(k_n):
        for x in range(n):
            q = quota[k, x]
            binding = np.isfinite(q)
            if binding:
                q0 = q if q >= 0.0 or q != q else 0.0
                left = q0 - pairwise_sum(trade[k, x], 0, n)
                binding = (left <= 1e-6 * (abs(q) + 1.0)) and (s_rem[k, x] > _EPS)
            quota_binding[k, x] = binding
            tax_got[k, x] = pairwise_sum(tax_m[k, x], 0, n)
            sold[k, x] = pairwise_sum(flows[k, x], 0, n)
            bought[k, x] = _tot_down(flows, k, x, n)
            d = d_rem[k, x]
            unmet[k, x] = d if d >= 0.0 or d != d else 0.0
            s = s_rem[k, x]
            unsold[k, x] = s if s >= 0.0 or s != s else 0.0
        freight[k] = pairwise_sum(freight_m[k], 0, n * n)
    return leak, seller_got, tax_got, freight, sold, bought, unmet, unsold, e_rem, quota_binding
