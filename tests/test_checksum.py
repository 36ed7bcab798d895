"""Pinned output of a short run: speed work must not change results.

If a change of behaviour is intended, update ``EXPECTED`` in the same commit and say why in the
commit message (see docs/ODD.md for what the model does).
"""

from __future__ import annotations

import hashlib

import numpy as np

from abm.model import RareEarthModel
from abm.scenario import load_scenario

EXPECTED = "48b1f2ff4aed3108"


def checksum() -> str:
    model = RareEarthModel(load_scenario("default", months=36, firms=150, seed=3))
    model.run()
    df = model.recorder.frame(model.dates)
    cols = ["variable", "country", "partner", "good", "stage", "segment", "sector"]
    codes = np.stack([df[c].cat.codes.to_numpy().astype(np.int16) for c in cols])
    values = np.round(df["value"].to_numpy(), 6)
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(codes).tobytes())
    h.update(np.ascontiguousarray(values).tobytes())
    return h.hexdigest()[:16]


def test_short_run_output_is_pinned():
    assert checksum() == EXPECTED
