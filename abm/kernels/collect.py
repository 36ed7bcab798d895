"""Kernels for step collect of a month (see abm.kernels).

``capacity_totals`` gives the producers' capacity online, under construction and idle by
country and stage that ``abm.outputs.record_month`` reports, as its three ``np.bincount`` calls
add them, in one pass over the producers' rows. The manufacturers' stocks by country stay a
numpy ``np.add.reduceat`` (pairwise blocks; a kernel reproducing them was no faster).
"""

from __future__ import annotations

import numpy as np

from abm.engine import jit


@jit
def capacity_totals(capacity, active, idle, proj_size, key, n_key):
    """Producers' (rows ``0 .. key.size - 1``) capacity totals by ``key`` (country x 4 + stage).

    ``np.bincount(key, weights=w)`` adds each row's weight onto its bin in row order, from 0.0;
    the weights are capacity x active, capacity under way, and capacity x active x idle (a
    boolean counts as 0.0 or 1.0 in the product, as in numpy).

    Returns:
        (online, under construction, idle), each (n_key,).
    """
    online = np.zeros(n_key)
    building = np.zeros(n_key)
    idled = np.zeros(n_key)
    for r in range(key.shape[0]):
        k = key[r]
        cap = capacity[r] * (1.0 if active[r] else 0.0)
        online[k] += cap
        building[k] += proj_size[r]
        idled[k] += cap * (1.0 if idle[r] else 0.0)
    return online, building, idled
