"""Compiled (numba) kernels for the per-firm passes of a month, one module per step.

Imported only by a model on the ``numba`` engine (see :mod:`abm.engine`). Each kernel does
exactly what the numpy code beside its call in :mod:`abm.model` does, in the same order, so the
two engines give identical results; ``tests/test_engine.py`` checks that on every scenario.
"""

from abm.kernels import collect, learn, market, orders, plan, settle

__all__ = ["collect", "learn", "market", "orders", "plan", "settle"]
