"""Count the numpy work per month on per-firm arrays (approximate, by instrumenting arrays).

Per-firm arrays are re-viewed as :class:`Counted`, an ndarray subclass that counts every ufunc
call (``+``, ``*``, ``np.maximum``, ``@``...) and every numpy function (``np.where``,
``np.bincount``, ``np.einsum``...) that receives one of them, with the size of its largest
input. Calls on arrays smaller than a tenth of the firm count (country tables) are ignored.
Indexing, slicing and assignment are not counted, nor operations between plain arrays derived
without a counted operand, so the counts are a floor. They let the numpy lower bound be
compared with the model on a like-for-like amount of work: "calls" is how many numpy calls per
month, "passes" the elements those calls read, in units of one (N, 8) array.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np


class Counted(np.ndarray):
    """An ndarray that reports each numpy call it takes part in to ``Counted.tally``."""

    tally: collections.Counter | None = None
    min_size = 0

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = [x.view(np.ndarray) if isinstance(x, Counted) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(
                x.view(np.ndarray) if isinstance(x, Counted) else x for x in kwargs["out"]
            )
        result = getattr(ufunc, method)(*plain, **kwargs)
        _note(ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}", inputs)
        if isinstance(result, np.ndarray) and result.ndim and type(result) is np.ndarray:
            return result.view(Counted)
        return result

    def __array_function__(self, func, types, args, kwargs):
        _note(func.__name__, args)
        return super().__array_function__(func, types, args, kwargs)


def _note(name: str, operands) -> None:
    tally = Counted.tally
    if tally is None:
        return
    size = max((x.size for x in operands if isinstance(x, np.ndarray)), default=0)
    if size >= Counted.min_size:
        tally["calls"] += 1
        tally["elements"] += size
        tally[f"fn:{name}"] += 1


def _count(step, months: int, n: int) -> dict:
    tally: collections.Counter = collections.Counter()
    Counted.tally, Counted.min_size = tally, max(n // 10, 1)
    try:
        for _ in range(months):
            step()
    finally:
        Counted.tally = None
    functions = {k[3:]: v / months for k, v in tally.most_common() if k.startswith("fn:")}
    return {
        "calls_per_month": tally["calls"] / months,
        "passes_per_month": tally["elements"] / months / (n * 8),
        "top_functions_per_month": dict(list(functions.items())[:8]),
    }


def count_model(n: int = 10_000, months: int = 6) -> dict:
    """Numpy calls and (N, 8) passes per month of our model, after one warm-up month."""
    import mesa

    from abm.model import RareEarthModel
    from abm.scenario import load_scenario

    model = RareEarthModel(load_scenario("default", firms=n, months=months + 1))
    try:
        model.step()
        f = model.firms
        rows = {f.n, model.P, f.n - model.P}
        for fld in dataclasses.fields(f):
            setattr(f, fld.name, getattr(f, fld.name).view(Counted))
        for name, value in list(vars(model).items()):
            if isinstance(value, np.ndarray) and value.ndim and value.shape[0] in rows:
                setattr(model, name, value.view(Counted))
        return _count(model.step, months, n)
    finally:
        mesa.Agent._ids.pop(model, None)


def count_numpy_bound(n: int = 10_000, months: int = 6) -> dict:
    """Numpy calls and (N, 8) passes per month of :func:`benchmarks.numpy_bound.numpy_month`."""
    from benchmarks.numpy_bound import make_firms, numpy_month

    firms, world = make_firms(n)
    for fld in dataclasses.fields(firms):
        setattr(firms, fld.name, getattr(firms, fld.name).view(Counted))
    return _count(lambda: numpy_month(firms, world), months, n)
