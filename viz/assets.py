"""Put every front-end file the explorer needs on this machine, so it runs with no internet.

Solara serves its JavaScript and CSS through a proxy cache folder, ``<prefix>/share/solara/cdn/``
(``prefix`` is the virtual environment): a request for ``/_solara/cdn/NAME@VERSION/FILE`` is
answered from ``cdn/NAME@VERSION/FILE`` when it is there and fetched from a public CDN when it is
not. Classrooms often have no route to that CDN, so :func:`ensure_assets` fills the folder once,
from the npm registry, with the machine's own ``npm pack NAME@VERSION``: each tarball's
``package/`` contents are unpacked into ``cdn/NAME@VERSION/``.

Run it as ``lanthanide setup-ui`` (``lanthanide explore`` calls it when anything is missing).
It is idempotent (packages already present are skipped) and atomic (each package is unpacked into
a temporary folder beside its final place and renamed into place when complete).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# The npm packages the explorer's page asks for, as NAME, VERSION (the version is spelled as the
# page requests it: a range such as "5" is how Altair's renderer asks for Vega).
PACKAGES: tuple[tuple[str, str], ...] = (
    ("requirejs", "2.3.6"),
    ("font-awesome", "4.5.0"),
    ("@widgetti/solara-vuetify-app", "10.1.1"),
    ("@widgetti/solara-vuetify3-app", "5.2.0"),
    ("@widgetti/vue-grid-layout", "2.3.13-alpha.2"),
    ("vega", "5"),
    ("vega-lite", "5"),
    ("vega-embed", "6"),
    ("mermaid", "10.8.0"),  # loaded by solara.Markdown
    ("katex", "0.16.9"),  # loaded by solara.Markdown (maths)
)

# What npm fetches for a folder whose version is a range (reproducible installs): the versions
# tested with Solara 1.64.1 here.
PINS: dict[tuple[str, str], str] = {
    ("vega", "5"): "5.33.1",
    ("vega-lite", "5"): "5.23.0",
    ("vega-embed", "6"): "6.29.0",
}

# A file each package must contain once unpacked (guards against a half-written folder).
_MARKER = "package.json"


class AssetsError(RuntimeError):
    """The front-end files could not be put in place (the message is one line)."""


def cache_dir() -> Path:
    """The folder Solara serves ``/_solara/cdn/`` from (its proxy cache).

    Solara's own setting is used when Solara is installed (it honours the
    ``SOLARA_ASSETS_PROXY_CACHE_DIR`` environment variable); otherwise
    ``<sys.prefix>/share/solara/cdn``.
    """
    try:
        from solara.server import settings

        return Path(settings.assets.proxy_cache_dir)
    except ImportError:  # pragma: no cover - solara is a main dependency
        return Path(sys.prefix) / "share" / "solara" / "cdn"


def folder_name(name: str, version: str) -> str:
    """``NAME@VERSION``, the folder (and URL segment) of one package."""
    return f"{name}@{version}"


def missing(root: Path | None = None) -> list[tuple[str, str]]:
    """The packages not yet unpacked under ``root`` (default :func:`cache_dir`)."""
    root = cache_dir() if root is None else Path(root)
    return [(n, v) for n, v in PACKAGES if not (root / folder_name(n, v) / _MARKER).is_file()]


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise AssetsError(
            "npm not found: install Node.js and npm (Debian: apt-get install nodejs npm), "
            "then run 'lanthanide setup-ui'"
        )
    return npm


def _unpack(tarball: Path, dest: Path) -> None:
    """Unpack the ``package/`` folder of an npm tarball into ``dest`` (atomically)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            tar.extractall(tmp, filter="data")
        # npm tarballs hold one top folder, usually "package/" (a few packages use another name)
        tops = [p for p in tmp.iterdir() if p.is_dir()]
        src = tmp / "package" if (tmp / "package").is_dir() else (tops[0] if tops else None)
        if src is None or not (src / _MARKER).is_file():
            raise AssetsError(f"{tarball.name}: not an npm package tarball (no package.json)")
        if dest.exists():  # a stale, incomplete folder from an interrupted older tool
            shutil.rmtree(dest)
        os.replace(src, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch(name: str, version: str, root: Path, npm: str | None = None) -> Path:
    """Fetch one package with ``npm pack`` and unpack it into ``root/NAME@VERSION``.

    Args:
        name: npm package name, e.g. ``"@widgetti/solara-vuetify-app"``.
        version: the version as the page asks for it, e.g. ``"10.1.1"`` or ``"5"`` (a range is
            fetched at its pinned version, :data:`PINS`).
        root: the cache folder.
        npm: path of the npm executable (default: found on ``PATH``).

    Returns:
        The package's folder.

    Raises:
        AssetsError: npm is missing or failed, or the tarball is not an npm package.
    """
    npm = npm or _npm()
    dest = root / folder_name(name, version)
    spec = f"{name}@{PINS.get((name, version), version)}"
    with tempfile.TemporaryDirectory(prefix="lanthanide-npm-") as work:
        res = subprocess.run(
            [npm, "pack", spec, "--silent", "--pack-destination", work],
            capture_output=True,
            text=True,
            cwd=work,
            timeout=600,
            check=False,
        )
        tarballs = sorted(Path(work).glob("*.tgz"))
        if res.returncode != 0 or not tarballs:
            last = (res.stderr.strip().splitlines() or ["no tarball written"])[-1]
            raise AssetsError(f"npm pack {spec} failed: {last}")
        _unpack(tarballs[0], dest)
    return dest


def ensure_assets(root: Path | None = None, *, quiet: bool = False) -> list[str]:
    """Put every package of :data:`PACKAGES` in place; skip those already there.

    Args:
        root: the cache folder (default :func:`cache_dir`).
        quiet: do not print progress.

    Returns:
        The ``NAME@VERSION`` folders fetched now (empty when everything was there).
    """
    root = cache_dir() if root is None else Path(root)
    todo = missing(root)
    if not todo:
        return []
    npm = _npm()
    done = []
    for name, version in todo:
        if not quiet:
            print(f"lanthanide: fetching {name}@{version} with npm pack", file=sys.stderr)
        fetch(name, version, root, npm)
        done.append(folder_name(name, version))
    return done


def main(argv: list[str] | None = None) -> int:
    """``python -m viz.assets``: the same as ``lanthanide setup-ui``."""
    try:
        fetched = ensure_assets()
    except AssetsError as exc:
        print(f"lanthanide: error: {exc}", file=sys.stderr)
        return 2
    root = cache_dir()
    if fetched:
        print(f"front-end files in place in {root} ({len(fetched)} packages fetched)")
    else:
        print(f"front-end files already in place in {root}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
