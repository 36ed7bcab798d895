"""Start the explorer: ``lanthanide explore [--host 127.0.0.1] [--port 8765]``.

The page is served by Solara's own server in production mode. Before it starts, the front-end
files are put in place when any is missing (:func:`viz.assets.ensure_assets`), so the page works
with no internet; Solara's usage telemetry is switched off.
"""

from __future__ import annotations

import os
import subprocess
import sys

APP = "viz.app"


def server_env() -> dict[str, str]:
    """The environment the Solara server runs in: no telemetry, our page title."""
    env = dict(os.environ)
    env.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")
    env.setdefault("SOLARA_THEME_TITLE", "Lanthanide explorer")
    env.setdefault("SOLARA_THEME_SHOW_BANNER", "False")
    return env


def server_command(host: str, port: int) -> list[str]:
    """The command line of the Solara server for the explorer."""
    return [
        sys.executable,
        "-m",
        "solara",
        "run",
        APP,
        "--production",
        "--host",
        host,
        "--port",
        str(port),
        "--no-open",
        "--log-level",
        "warning",
    ]


def explore(host: str = "127.0.0.1", port: int = 8765) -> int:
    """Put the front-end files in place if needed, then serve the explorer until Ctrl-C.

    Args:
        host: address to listen on (127.0.0.1: this machine only; 0.0.0.0: a classroom LAN).
        port: TCP port.

    Returns:
        The server's exit code (0 after Ctrl-C).
    """
    from viz.assets import ensure_assets

    ensure_assets()
    print(f"Lanthanide explorer on http://{host}:{port}/ (Ctrl-C to stop)", file=sys.stderr)
    proc = subprocess.Popen(server_command(host, port), env=server_env())
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 0
