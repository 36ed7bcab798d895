"""Kernels for step collect of a month (see abm.kernels).

``firm_totals`` gives the per-country totals over firms that ``abm.outputs.record_month``
reports: manufacturers' stocks (as ``RareEarthModel.sum_makers`` adds them, with
``np.add.reduceat``) and producers' capacity online, under construction and idle (as
``np.bincount`` adds them), in one pass over each block of rows.
"""

from __future__ import annotations

import functools

import numpy as np

from abm.engine import jit


@jit
def _pairwise(x, a, n, col0, out):
    """``out[j]`` = numpy's pairwise sum of ``x[a : a + n, col0 + j]``, every column at once.

    numpy's float add reduces a strided run in blocks: fewer than 8 values one by one onto
    -0.0; up to 128 in 8 interleaved partial sums combined as a tree, the rest one by one; more
    than that as the sums of two halves (the first a multiple of 8 long).
    """
    nj = out.shape[0]
    if n < 8:
        for j in range(nj):
            res = -0.0
            for i in range(n):
                res += x[a + i, col0 + j]
            out[j] = res
    elif n <= 128:
        stop = n - n % 8
        for j in range(nj):  # a block is in cache after its first column: one column at a time
            c = col0 + j
            r0, r1, r2, r3 = x[a, c], x[a + 1, c], x[a + 2, c], x[a + 3, c]
            r4, r5, r6, r7 = x[a + 4, c], x[a + 5, c], x[a + 6, c], x[a + 7, c]
            for i in range(a + 8, a + stop, 8):
                r0 += x[i, c]
                r1 += x[i + 1, c]
                r2 += x[i + 2, c]
                r3 += x[i + 3, c]
                r4 += x[i + 4, c]
                r5 += x[i + 5, c]
                r6 += x[i + 6, c]
                r7 += x[i + 7, c]
            res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
            for i in range(a + stop, a + n):
                res += x[i, c]
            out[j] = res
    else:
        n2 = n // 2
        n2 -= n2 % 8
        left = np.empty(nj)
        right = np.empty(nj)
        _pairwise(x, a, n2, col0, left)
        _pairwise(x, a + n2, n - n2, col0, right)
        for j in range(nj):
            out[j] = left[j] + right[j]


@functools.cache
def reduceat_order() -> bool:
    """Whether ``firm_totals`` adds up stocks as this numpy's ``np.add.reduceat``, bit for bit.

    numpy's float add has reduced strided runs pairwise in blocks of 8 for many releases; a
    build that adds otherwise fails this check, and numpy then adds the stocks itself.
    """
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 5)) * np.exp(5 * rng.standard_normal((3000, 5)))
    starts = np.array([0, 1, 9, 140, 1000], dtype=np.intp)
    cs = np.arange(starts.size, dtype=np.intp)
    no_f, no_b = np.zeros(0), np.zeros(0, dtype=np.bool_)  # no producers (the model's types)
    no_key = np.zeros(0, dtype=np.int64)
    got = firm_totals(x, 0, 0, cs, starts, starts.size, no_f, no_b, no_b, no_f, no_key, 1)[0]
    return bool(np.array_equal(got, np.add.reduceat(x, starts, axis=0)))


@jit
def firm_totals(stock, row0, col0, cs, starts, n_c, capacity, active, idle, proj_size, key, n_key):
    """Manufacturers' stock by home country, and producers' capacity totals by key.

    ``stock`` rows ``row0 + starts[s]`` up to the next start (or the end) are country
    ``cs[s]``'s manufacturers; their columns from ``col0`` are summed as ``np.add.reduceat``
    does along axis 0 (the first row, plus the pairwise sum of the others). Producers are rows
    ``0 .. key.size - 1``; ``key`` is each one's output position (``country * 4 + stage``).

    Returns:
        (stock held (n_c, columns), capacity online, under construction, idle (n_key,)).
    """
    m = stock.shape[0] - row0
    nj = stock.shape[1] - col0
    held = np.zeros((n_c, nj))
    part = np.empty(nj)
    for s in range(starts.shape[0]):
        a = row0 + starts[s]
        b = row0 + (starts[s + 1] if s + 1 < starts.shape[0] else m)
        _pairwise(stock, a + 1, b - a - 1, col0, part)
        for j in range(nj):
            held[cs[s], j] = stock[a, col0 + j] + part[j]
    online = np.zeros(n_key)
    building = np.zeros(n_key)
    idled = np.zeros(n_key)
    for r in range(key.shape[0]):
        k = key[r]
        cap = capacity[r] * (1.0 if active[r] else 0.0)  # capacity * active (bool as 0.0 or 1.0)
        online[k] += cap
        building[k] += proj_size[r]
        idled[k] += cap * (1.0 if idle[r] else 0.0)
    return held, online, building, idled
