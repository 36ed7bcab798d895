"""Helpers the kernels share: numpy's pairwise summation and its NaN-keeping min and max.

numpy sums a run of values along one axis by pairwise summation (``pairwise_sum`` in its
loops): under 8 values a running sum from -0.0; up to 128 values eight running sums over
strides of 8, combined as ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), then the remainder
one by one; above 128 values the sum of the two halves (the first a multiple of 8 long), each
summed the same way. ``ndarray.sum`` then adds that to its output's starting 0.0, and
``np.add.reduceat`` to each block's first row. :func:`pairwise_sum` gives the same bits, for a
contiguous array or a strided view (a column).
"""

from __future__ import annotations

import numpy as np

from abm.engine import jit

BLOCK = 128  # numpy's PW_BLOCKSIZE


@jit
def maximum(a, b):
    """``np.maximum(a, b)`` of two floats: a NaN on either side is the result."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a >= b else b


@jit
def minimum(a, b):
    """``np.minimum(a, b)`` of two floats: a NaN on either side is the result."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a <= b else b


@jit
def block_sum(a, lo, n):
    """Numpy's pairwise sum of the ``n`` <= 128 values ``a[lo:lo + n]`` (one block)."""
    if n < 8:
        s = -0.0
        for i in range(n):
            s += a[lo + i]
        return s
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        j = lo + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    s = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        s += a[lo + i]
        i += 1
    return s


@jit
def pairwise_sum(a, lo, n):
    """Numpy's pairwise sum of the ``n`` values ``a[lo:lo + n]`` of a 1-D array or view.

    The halving above 128 values is walked on an explicit stack of frames, not by recursion:
    numba crashed reloading a self-recursive kernel from its cache.
    """
    if n <= BLOCK:
        return block_sum(a, lo, n)
    # frames: first value, length, phase (1 left half pending, 2 right half pending), left sum
    f_lo = np.empty(64, dtype=np.intp)
    f_n = np.empty(64, dtype=np.intp)
    f_phase = np.empty(64, dtype=np.int8)
    f_left = np.empty(64)
    top = 0
    f_lo[0], f_n[0], f_phase[0] = lo, n, 0
    while True:
        m = f_n[top]
        if m > BLOCK:  # a new frame: sum its left half first
            half = m // 2
            half -= half % 8
            f_phase[top] = 1
            top += 1
            f_lo[top], f_n[top], f_phase[top] = f_lo[top - 1], half, 0
            continue
        ret = block_sum(a, f_lo[top], m)
        top -= 1
        while f_phase[top] == 2:  # a right half done: its frame's sum goes up
            ret = f_left[top] + ret
            if top == 0:
                return ret
            top -= 1
        # a left half done: keep it and sum the right half
        f_left[top] = ret
        f_phase[top] = 2
        half = f_n[top] // 2
        half -= half % 8
        start, rest = f_lo[top] + half, f_n[top] - half
        top += 1
        f_lo[top], f_n[top], f_phase[top] = start, rest, 0
