"""Kernels for step market of a month (see abm.kernels)."""

from __future__ import annotations

import numpy as np  # noqa: F401

from abm.engine import jit  # noqa: F401
