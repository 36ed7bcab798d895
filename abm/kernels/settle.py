"""Kernels for step settle of a month (see abm.kernels): goods and money move, firm by firm.

``RareEarthModel._settle`` calls four fused passes, in the order its numpy code runs:
``producer_trade`` (output, restart costs, pool sales, purchases), ``maker_settle``
(manufacturers' purchases, the negative-stock check, consumption), ``producer_close`` (the
holding-limit discard, recycling subsidy, capex) and, after the conservation checks,
``expect_sales``. The conservation tallies and the sums by country stay numpy calls (matrix
products, whose order BLAS picks), but for one.

Three sums are numpy reductions whose order numpy fixes, done here in that order: a row sum of
8 items (``x.sum(axis=1)``: numpy's pairwise sum, 8 partial sums added as a tree), the row dot
product ``np.einsum("ni,ni->n", a, b)`` (numpy's vector loop: 2 lanes of float64 on an
x86-64-v2 build, each adding its products in a fixed order) and manufacturers' use by country
block (``np.add.reduceat``: a block's first row plus the pairwise sum of the others).
:func:`matches_numpy` checks all three against this numpy once per process; where one differs
(another numpy build or CPU), the model settles with its numpy code instead.
"""

from __future__ import annotations

import functools

import numpy as np

from abm.engine import jit
from abm.kernels.common import pairwise_sum


@jit
def _row_sum(a, r):
    """``a[r].sum()`` as numpy's pairwise sum adds a row of at most 128 (output starts at 0).

    Settlement sums rows of ``I`` = 8 items; longer rows would need numpy's recursive split.
    """
    n = a.shape[1]
    if n < 8:  # numpy adds a short row in order, from -0.0
        s = -0.0
        for j in range(n):
            s += a[r, j]
        return 0.0 + s
    p0, p1, p2, p3 = a[r, 0], a[r, 1], a[r, 2], a[r, 3]
    p4, p5, p6, p7 = a[r, 4], a[r, 5], a[r, 6], a[r, 7]
    j = 8
    while j <= n - 8:  # eight running partial sums
        p0 += a[r, j]
        p1 += a[r, j + 1]
        p2 += a[r, j + 2]
        p3 += a[r, j + 3]
        p4 += a[r, j + 4]
        p5 += a[r, j + 5]
        p6 += a[r, j + 6]
        p7 += a[r, j + 7]
        j += 8
    s = ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7))
    while j < n:
        s += a[r, j]
        j += 1
    return 0.0 + s


@jit
def _row_dot(a, b, rb, col0):
    """``np.einsum("i,i->", a, b[rb, col0:])`` as numpy's two-lane loop adds the products.

    Lane 0 takes the even positions, lane 1 the odd ones; blocks of 8 are added from the last
    pair to the first, then the rest pair by pair (a missing partner adds 0 * 0); the output
    (initially 0) gets lane 0 + lane 1.
    """
    n = a.shape[0]
    l0 = 0.0
    l1 = 0.0
    j = 0
    while n - j >= 8:
        t0 = a[j + 6] * b[rb, col0 + j + 6] + l0
        t1 = a[j + 7] * b[rb, col0 + j + 7] + l1
        t0 = a[j + 4] * b[rb, col0 + j + 4] + t0
        t1 = a[j + 5] * b[rb, col0 + j + 5] + t1
        t0 = a[j + 2] * b[rb, col0 + j + 2] + t0
        t1 = a[j + 3] * b[rb, col0 + j + 3] + t1
        l0 = a[j] * b[rb, col0 + j] + t0
        l1 = a[j + 1] * b[rb, col0 + j + 1] + t1
        j += 8
    while j < n:
        l0 = a[j] * b[rb, col0 + j] + l0
        if j + 1 < n:
            l1 = a[j + 1] * b[rb, col0 + j + 1] + l1
        else:
            l1 = 0.0 * 0.0 + l1
        j += 2
    return (l0 + l1) + 0.0


@jit
def row_sums(a):
    """(n,) ``_row_sum`` of each row of ``a`` (for :func:`matches_numpy`)."""
    out = np.empty(a.shape[0])
    for r in range(a.shape[0]):
        out[r] = _row_sum(a, r)
    return out


@jit
def row_dots(a, b):
    """(n,) ``_row_dot`` of each row pair of ``a`` and ``b`` (for :func:`matches_numpy`)."""
    out = np.empty(a.shape[0])
    row = np.empty(a.shape[1])
    for r in range(a.shape[0]):
        for j in range(a.shape[1]):
            row[j] = a[r, j]
        out[r] = _row_dot(row, b, r, 0)
    return out


@jit
def block_sums(x, starts):
    """(B, K) ``np.add.reduceat(x, starts, axis=0)``, added as numpy adds it.

    Each block of rows (from one start to the next, the last to the end) is its first row plus
    the pairwise sum of the others, column by column.
    """
    nb, m, k = starts.shape[0], x.shape[0], x.shape[1]
    out = np.empty((nb, k))
    for b in range(nb):
        lo = starts[b]
        hi = starts[b + 1] if b + 1 < nb else m
        for j in range(k):
            out[b, j] = x[lo, j] + pairwise_sum(x[:, j], lo + 1, hi - lo - 1)
    return out


@functools.cache
def matches_numpy() -> bool:
    """Whether ``_row_sum``, ``_row_dot`` and ``block_sums`` add as numpy does here, bit for bit.

    Checked once per process on random rows of 1 to 9 items spanning 16 orders of magnitude
    (any other order of additions, or a fused multiply-add, shows in the last bits).
    """
    rng = np.random.default_rng(20261202)
    for n in (1, 2, 3, 7, 64, 1001):
        for k in range(1, 10):
            a = rng.standard_normal((n, k)) * 10.0 ** rng.integers(-8, 8, (n, k))
            b = rng.standard_normal((n, k)) * 10.0 ** rng.integers(-8, 8, (n, k))
            if not np.array_equal(row_sums(a), a.sum(axis=1)):
                return False
            if not np.array_equal(row_dots(a, b), np.einsum("ni,ni->n", a, b)):
                return False
            # blocks from the first row (as the model's), of about 10 rows or (odd k) 500
            starts = np.flatnonzero(rng.random(n) < (0.002 if k % 2 else 0.1))
            starts = np.union1d(0, starts)
            if not np.array_equal(block_sums(a, starts), np.add.reduceat(a, starts, axis=0)):
                return False
    return True


@jit
def producer_trade(
    stock,
    cash,
    out,
    used,
    cost,
    restart,
    offers,
    firm_t,
    firm_rev,
    frac,
    per_t,
    fill,
    cost_t,
    orders,
    c_pr,
):
    """Producers' output, restart costs, pool sales and purchases, in place in ``stock``/``cash``.

    The numpy code in ``RareEarthModel._producer_trade``, fused: for producer ``r`` (country
    ``c = c_pr[r]``) and item ``i``, ``stock += out - used``, ``cash -= cost`` and ``cash -=
    restart`` (all zero when no restart is due: subtracting 0 changes nothing), then the pool's
    share ``rest = frac[c] * (offers - firm_t)``, ``sold = firm_t + rest``, ``rev = firm_rev +
    rest * per_t[c]``, ``stock -= sold``, ``cash += rev`` summed over items, and purchases ``got
    = orders * fill[c]``, ``stock += got``, ``cash -= got . cost_t[c]``.

    Returns:
        (sold, revenue) by item, (P, I), and revenue per producer, (P,).
    """
    p, ni = out.shape
    sold = np.empty((p, ni))
    rev = np.empty((p, ni))
    rev_n = np.empty(p)
    got = np.empty(ni)
    for r in range(p):
        c = c_pr[r]
        for i in range(ni):
            st = stock[r, i] + (out[r, i] - used[r, i])
            rest = frac[c, i] * (offers[r, i] - firm_t[r, i])
            s = firm_t[r, i] + rest
            sold[r, i] = s
            rev[r, i] = firm_rev[r, i] + rest * per_t[c, i]
            st -= s
            g = orders[r, i] * fill[c, i]
            got[i] = g
            stock[r, i] = st + g
        cr = cash[r] - cost[r]
        cr -= restart[r]
        rn = _row_sum(rev, r)
        rev_n[r] = rn
        cr += rn
        cr -= _row_dot(got, cost_t, c, 0)
        cash[r] = cr
    return sold, rev, rev_n


@jit
def maker_settle(stock, cash, orders_mf, stock_mf, need, fill, cost_t, c_mf, row0, col0, starts):
    """Manufacturers' purchases, the negative-stock check and consumption.

    The numpy code of ``RareEarthModel._settle`` for manufacturer ``r`` (row ``row0 + r``,
    country ``c = c_mf[r]``) and item ``j`` (column ``col0 + j``), fused: ``got = orders_mf *
    fill[c]``, ``paid = got . cost_t[c]``, ``stock_mf += got``, ``cash -= paid`` and, as they
    pass it on to customers, ``cash += paid``. Then, unless some stock is below -1e-6 (``bad``:
    the first row holding the lowest; ``stock_mf.min(initial=0)`` is nan when any is nan, and
    nothing is flagged), ``use = min(stock_mf, need)`` (nan wins; a tie takes ``need``),
    ``stock_mf -= use``, copied back into ``stock``, ``short = need - use``, and ``use`` summed
    over the blocks of rows beginning at ``starts`` by :func:`block_sums` (none if empty).

    Returns:
        (paid (M,), use (M, J), short (M, J), use by block (B, J), bad): ``bad`` is -1 if no
        stock is negative; else the arrays but ``paid`` are empty and ``stock`` is untouched.
    """
    m, nj = orders_mf.shape
    paid = np.empty(m)
    got = np.empty(nj)
    lo = 0.0
    has_nan = False
    for r in range(m):
        c = c_mf[r]
        for j in range(nj):
            g = orders_mf[r, j] * fill[c, col0 + j]
            got[j] = g
            s = stock_mf[r, j] + g
            stock_mf[r, j] = s
            if s < lo:
                lo = s
            elif s != s:
                has_nan = True
        pd = _row_dot(got, cost_t, c, col0)
        paid[r] = pd
        cash[row0 + r] = (cash[row0 + r] - pd) + pd
    if not has_nan and lo < -1e-6:
        for r in range(m):
            for j in range(nj):
                if stock_mf[r, j] == lo:
                    none = np.empty((0, nj))
                    return paid, none, none, none, r
    use = np.empty((m, nj))
    short = np.empty((m, nj))
    for r in range(m):
        for j in range(nj):
            s = stock_mf[r, j]
            nd = need[r, j]
            u = s if (s < nd or s != s) else nd  # np.minimum(stock, need)
            use[r, j] = u
            s -= u
            stock_mf[r, j] = s
            stock[row0 + r, col0 + j] = s
            short[r, j] = nd - u
    return paid, use, short, block_sums(use, starts), -1


@jit
def producer_close(
    stock, cash, hold_limit, recycled, subsidy, with_pay, kg_per_t, c_pr, proj_size,
    proj_capex_left, proj_left,
):  # fmt: skip
    """Miners' discard beyond the holding limit, recycling subsidy and capex, for rows < P.

    The numpy code of ``RareEarthModel._settle``, fused: ``discard = max(stock - limit, 0)``
    where ``limit > 0`` (else 0; nan stays nan), ``stock -= discard``; with a subsidy in force
    (``with_pay``), ``pay = recycled * kg_per_t * subsidy[c_pr]`` and ``cash += pay``;
    ``spend = capex_left / max(proj_left, 1)`` where ``proj_size > 0`` (else 0),
    ``capex_left -= spend``, ``cash -= spend``.

    Returns:
        (discard (P, I), pay (P,) or empty without a subsidy, spend (P,)).
    """
    p, ni = hold_limit.shape
    discard = np.empty((p, ni))
    pay = np.empty(p if with_pay else 0)
    spend = np.empty(p)
    for r in range(p):
        for i in range(ni):
            lim = hold_limit[r, i]
            d = 0.0
            if lim > 0:
                d = stock[r, i] - lim
                if d <= 0.0:  # np.maximum(d, 0.0): nan stays, -0.0 becomes 0.0
                    d = 0.0
            discard[r, i] = d
            stock[r, i] -= d
        cr = cash[r]
        if with_pay:
            pay_r = recycled[r] * kg_per_t * subsidy[c_pr[r]]
            pay[r] = pay_r
            cr += pay_r
        sp = 0.0
        if proj_size[r] > 0:
            months = proj_left[r]
            if months < 1:
                months = 1
            sp = proj_capex_left[r] / np.float64(months)
        proj_capex_left[r] -= sp
        cash[r] = cr - sp
        spend[r] = sp
    return discard, pay, spend


@jit
def expect_sales(exp_sales, sold, sell_mask, speed, out, recycled, basket, recycler):
    """Producers' expected sales, and the per-producer terms of the month's output tables.

    ``exp_sales += speed * (sold - exp_sales) * sell_mask`` for rows < P, in place; and
    ``out * ~recycler`` and ``recycled * basket * recycler`` (the rows the model sums by country
    into production and recycled output).

    Returns:
        (made (P, I), recycled by group (P, G)).
    """
    p, ni = sold.shape
    ng = basket.shape[1]
    made = np.empty((p, ni))
    rec = np.empty((p, ng))
    for r in range(p):
        for i in range(ni):
            e = exp_sales[r, i]
            exp_sales[r, i] = e + speed * (sold[r, i] - e) * sell_mask[r, i]
            made[r, i] = out[r, i] * (0.0 if recycler[r] else 1.0)
        w = 1.0 if recycler[r] else 0.0
        for g in range(ng):
            rec[r, g] = recycled[r] * basket[r, g] * w
    return made, rec
