"""``lanthanide wargame``: one process serving the Solara pages and the JSON API under ``/api``.

Solara's server is a Starlette app (``solara.server.starlette.app``); the API's routes are put
in front of its own, so one port, one process and one :class:`viz.wargame.hub.Hub` serve the
players' pages, the facilitator's console and any script. Games live in SQLite; a restart
restores every game at its last completed turn.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

PAGES = "viz.wargame.pages"


def lan_address() -> str:
    """This machine's address on the local network (no packet is sent), or 127.0.0.1."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def build_app(db: str | Path, public_url: str):
    """The Starlette app: API routes first, then Solara's; the hub restored from ``db``."""
    os.environ.setdefault("SOLARA_APP", PAGES)
    os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")
    os.environ.setdefault("SOLARA_THEME_TITLE", "Lanthanide wargame")
    os.environ.setdefault("SOLARA_THEME_SHOW_BANNER", "False")
    from viz.wargame.hub import Hub, set_hub

    hub = Hub(db, public_url)
    set_hub(hub)
    hub.start()
    import solara.server.starlette as solara_starlette

    from viz.wargame.api import routes

    app = solara_starlette.app
    app.router.routes[0:0] = routes
    return app, hub


def serve(host: str = "127.0.0.1", port: int = 8766, db: str | None = None, public_url=None) -> int:
    """Serve the wargame until Ctrl-C.

    Args:
        host: address to listen on (127.0.0.1 for this machine; 0.0.0.0 for a classroom LAN).
        port: TCP port.
        db: SQLite file (default: the user's data folder, see ``store.default_db_path``).
        public_url: the address players use (default: this machine's LAN address and port).

    Returns:
        0 after Ctrl-C.
    """
    import uvicorn

    from viz.assets import ensure_assets
    from viz.wargame.store import default_db_path

    ensure_assets()
    db_path = Path(db) if db else default_db_path()
    if public_url is None:
        shown = lan_address() if host in ("0.0.0.0", "") else host
        public_url = f"http://{shown}:{port}"
    app, hub = build_app(db_path, public_url)
    print(
        f"Lanthanide wargame on {public_url}/ (facilitator: {public_url}/ ; API: "
        f"{public_url}/api; games in {db_path}; Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        hub.stop()
    return 0
