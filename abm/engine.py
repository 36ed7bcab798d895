"""Which engine does the per-firm arithmetic of a month: numpy, or kernels compiled with numba.

Both engines give the same results bit for bit: a kernel does, element by element, the same
float64 operations in the same order as the numpy code it replaces (no fast-math, no fused
multiply-add, divisions by zero as numpy does them), and sums whose order numpy does not fix
stay numpy calls. ``tests/test_engine.py`` runs every scenario on both engines and compares the
outputs exactly. So the engine is a speed setting, never a model parameter: it is not in the
scenario file and not in a run's manifest of parameters.

Compiled kernels pay off with many firms: a fused pass over 10,000 firms replaces a dozen numpy
calls and their temporaries. They cost about a second per process the first time they are used
(importing numba and loading the compiled code from numba's cache); the very first use on a
machine also compiles them, 20-45 s on 2 cores. So ``auto`` (the default) uses them from
``AUTO_MIN_FIRMS`` firms, where a run is long enough to repay that, and only when numba is
installed; a default-size run never imports numba.

Choose with the ``engine`` argument of :class:`abm.model.RareEarthModel` or the environment
variable ``LANTHANIDE_ENGINE`` (``auto``, ``numpy`` or ``numba``), which sweep workers inherit.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from types import ModuleType

ENGINES = ("auto", "numpy", "numba")
ENGINE_ENV = "LANTHANIDE_ENGINE"
AUTO_MIN_FIRMS = 10_000
"""``auto`` compiles from this many firms (a run of fewer firms never imports numba).

Where a run pays back the kernels' load: at 10,000 firms the numba engine saves about 2-4 ms a
month, so a 192-month run with its counterfactual saves about as much as the load costs (about
1 s); sweeps and the explorer, which load once and run for long, gain from fewer firms too
(``LANTHANIDE_ENGINE=numba``)."""


class EngineError(ValueError):
    """An engine that does not exist, or numba asked for where it is not installed."""


@functools.cache
def numba_available() -> bool:
    """Whether numba imports here (checked once per process)."""
    try:
        import numba  # noqa: F401
    except Exception:  # an absent or broken install: numpy does the work
        return False
    return True


def resolve(engine: str | None, firms: int) -> str:
    """The engine a model of ``firms`` firms runs on: ``numpy`` or ``numba``.

    Args:
        engine: ``auto``, ``numpy`` or ``numba``; None reads ``LANTHANIDE_ENGINE`` (default
            ``auto``).
        firms: the model's firm count.

    Raises:
        EngineError: an unknown name, or ``numba`` where numba does not import.
    """
    source = "engine"
    if engine is None:
        engine, source = os.environ.get(ENGINE_ENV, "auto"), ENGINE_ENV
    name = str(engine).strip().lower()
    if name not in ENGINES:
        raise EngineError(f"{source}: '{engine}' is not one of {', '.join(ENGINES)}")
    if name == "auto":
        return "numba" if firms >= AUTO_MIN_FIRMS and numba_available() else "numpy"
    if name == "numba" and not numba_available():
        raise EngineError(f"{source}: numba is not installed here (use auto or numpy)")
    return name


def jit(fn):
    """Compile ``fn`` with numba the way every kernel is compiled (imported only by kernels).

    ``cache=True`` keeps the machine code between processes; ``error_model="numpy"`` makes a
    division by zero give inf or nan as numpy does instead of raising; fast-math stays off, so
    LLVM neither reorders nor fuses float operations.
    """
    import numba

    return numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=False)(fn)


def kernels() -> ModuleType:
    """The package :mod:`abm.kernels` (imports numba; each kernel compiles on its first call).

    The first time on a machine (numba's cache empty) a note on stderr says that the kernels are
    being compiled, which takes a while once; later processes load them from the cache.
    """
    module = importlib.import_module("abm.kernels")
    global _cold_checked
    if not _cold_checked:
        _cold_checked = True
        cold = uncached_kernels(module)
        if cold:
            print(
                f"lanthanide: compiling {len(cold)} numba kernels for this machine (once; "
                "later runs load them from numba's cache)",
                file=sys.stderr,
                flush=True,
            )
    return module


_cold_checked = False


def compile_note_given() -> None:
    """Count the note of :func:`kernels` as given in this process: it will not print it.

    For a process forked beside another that runs the same engine (a paired run's child): the
    other process compiles the same kernels at the same time and says so once.
    """
    global _cold_checked
    _cold_checked = True


def uncached_kernels(module: ModuleType) -> list[str]:
    """Names of the kernels in ``module``'s submodules with nothing in numba's cache yet.

    Reads where numba keeps each kernel's cache index (numba's own attributes: if they are not
    there, as in another numba version, nothing is reported).
    """
    out = []
    for name in getattr(module, "__all__", ()):
        sub = getattr(module, name)
        for attr, fn in vars(sub).items():
            try:
                index = fn._cache._cache_file._index_path
            except AttributeError:
                continue
            if not os.path.exists(index):
                out.append(f"{name}.{attr}")
    return out
