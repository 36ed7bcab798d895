"""Every game the server holds, token checks, and the deadline clock.

The :class:`Hub` is the one service layer: the JSON API (:mod:`viz.wargame.api`) and the
Solara pages (:mod:`viz.wargame.pages`) both call it with the caller's token, so a page can do
exactly what a script with the same token can do.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from viz.wargame.game import Game, GameConfig, GameError, new_code
from viz.wargame.store import Store, token_hash

TICK_SECONDS = 0.5


@dataclass(frozen=True)
class Caller:
    """Who a token belongs to."""

    game: Game
    role: str  # "facilitator" or "player"
    team: str | None = None
    player_id: int | None = None
    name: str = ""


class Hub:
    """The games of one server process, backed by one SQLite file.

    Args:
        db: path of the SQLite file (created if missing); every stored game is restored.
        public_url: the address players type or scan (for join links and QR codes).
    """

    def __init__(self, db: str | Path, public_url: str = "http://127.0.0.1:8766"):
        self.store = Store(db)
        self.public_url = public_url.rstrip("/")
        self.games: dict[str, Game] = {}
        self._lock = threading.Lock()
        self._fac: dict[str, str] = {}  # facilitator token hash -> game id
        for row in self.store.games():
            game = Game.restore(self.store, row)
            self.games[game.id] = game
            self._fac[row["facilitator_hash"]] = game.id
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the deadline clock (a daemon thread)."""
        if self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="wargame-clock", daemon=True)
            self._ticker.start()

    def stop(self) -> None:
        """Stop the clock."""
        self._stop.set()

    def _tick(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            now = time.time()
            for game in list(self.games.values()):
                due = game.deadline_at
                if due is not None and now >= due and game.status == "running":
                    try:
                        game.advance(reason="deadline")
                    except GameError:
                        pass

    # ------------------------------------------------------------------ auth

    def game(self, gid: str) -> Game:
        """The game with this id (404 if none)."""
        game = self.games.get(gid)
        if game is None:
            raise GameError(404, f"game: {gid!r} not found")
        return game

    def caller(self, gid: str, token: str | None) -> Caller:
        """Who holds ``token`` in game ``gid`` (401 without a valid token)."""
        game = self.game(gid)
        if not token:
            raise GameError(401, "authorization: missing; send 'Authorization: Bearer TOKEN'")
        h = token_hash(token)
        if self._fac.get(h) == gid:
            return Caller(game, "facilitator", name="Facilitator")
        for p in game.players.values():
            if p.token_hash == h:
                if p.kicked:
                    raise GameError(
                        401, "authorization: this player was removed by the facilitator"
                    )
                game.seen(p.id)
                return Caller(game, "player", p.team, p.id, p.name)
        raise GameError(401, "authorization: token not valid for this game")

    def facilitator(self, gid: str, token: str | None) -> Caller:
        """The caller, who must be this game's facilitator (403 otherwise)."""
        c = self.caller(gid, token)
        if c.role != "facilitator":
            raise GameError(403, "forbidden: only the facilitator may do this")
        return c

    def player(self, gid: str, token: str | None) -> Caller:
        """The caller, who must be a player (403 for the facilitator)."""
        c = self.caller(gid, token)
        if c.role != "player":
            raise GameError(403, "forbidden: moves are made by a team's player token")
        return c

    # ------------------------------------------------------------------ operations

    def create(self, body: object) -> dict:
        """``POST /api/games``: a new game; returns its id, facilitator token and join codes."""
        config = GameConfig.parse(body)
        gid = secrets.token_hex(4)
        while gid in self.games:
            gid = secrets.token_hex(4)
        codes = {t: new_code() for t in config.human_teams}
        fac = secrets.token_urlsafe(24)
        game = Game(gid, config, self.store, codes)
        self.store.create_game(gid, dataclasses.asdict(config), fac, codes)
        game._persist_status()
        with self._lock:
            self.games[gid] = game
            self._fac[token_hash(fac)] = gid
        return {
            "game_id": gid,
            "facilitator_token": fac,
            "join_codes": codes,
            "join_urls": {t: self.join_url(gid, c) for t, c in codes.items()},
        }

    def join_url(self, gid: str, code: str) -> str:
        """The address a player opens (or scans) to join a team."""
        return f"{self.public_url}/join?game={gid}&code={code}"

    def join(self, gid: str, body: object) -> dict:
        """``POST /api/games/{id}/join``."""
        if not isinstance(body, dict):
            raise GameError(400, "body: expected a JSON object with 'code' and 'name'")
        game = self.game(gid)
        token, team, pid = game.add_player(body.get("code", ""), body.get("name", ""))
        return {"player_token": token, "team": team, "player_id": pid}

    def state(self, gid: str, token: str | None) -> dict:
        """``GET /api/games/{id}/state``: what this token may see."""
        c = self.caller(gid, token)
        out = c.game.state(c.team, c.role == "facilitator")
        out["role"] = c.role
        if c.role == "player":
            out["name"] = c.name
            out["player_id"] = c.player_id
        else:
            out["join_urls"] = {t: self.join_url(gid, k) for t, k in c.game.codes.items()}
        return out

    def moves(self, gid: str, token: str | None, body: object) -> dict:
        """``PUT /api/games/{id}/moves``."""
        c = self.player(gid, token)
        if not isinstance(body, dict) or "moves" not in body:
            raise GameError(400, 'body: expected {"moves": {"LEVER": VALUE, ...}}')
        return c.game.set_moves(c.team, body["moves"], c.player_id)

    def advance(self, gid: str, token: str | None, body: object) -> dict:
        """``POST /api/games/{id}/advance``: now (default) or when all have submitted."""
        c = self.facilitator(gid, token)
        when = (body or {}).get("when", "now") if isinstance(body, dict | None) else None
        if when == "now":
            rec = c.game.advance()
            return {"advanced": True, "turn": c.game.turn, "date": c.game.model.date, "record": rec}
        if when in ("all_submitted", "manual"):
            c.game.set_auto_advance(when == "all_submitted")
            return {"advanced": False, "auto_advance": c.game.auto_advance, "turn": c.game.turn}
        raise GameError(400, f"when: {when!r} is not allowed; allowed: now, all_submitted, manual")

    def log(self, gid: str, token: str | None) -> dict:
        """``GET /api/games/{id}/log``."""
        return self.facilitator(gid, token).game.log()

    def export(self, gid: str, token: str | None) -> bytes:
        """``GET /api/games/{id}/export``: a zip of Parquet and JSON."""
        return self.facilitator(gid, token).game.export_zip()

    def message(self, gid: str, token: str | None, body: object) -> dict:
        """``POST /api/games/{id}/messages``: diplomacy or a broadcast."""
        c = self.caller(gid, token)
        if not isinstance(body, dict):
            raise GameError(400, 'body: expected {"to": ..., "text": ...}')
        sender = c.team if c.role == "player" else "facilitator"
        return c.game.message(sender, c.name, body.get("to", "all"), body.get("text"))

    def inject(self, gid: str, token: str | None, body: object) -> dict:
        """``POST /api/games/{id}/inject``."""
        return self.facilitator(gid, token).game.inject(body)

    def pause(self, gid: str, token: str | None, body: object) -> dict:
        """``POST /api/games/{id}/pause`` with ``{"paused": true|false}``."""
        g = self.facilitator(gid, token).game
        g.set_paused((body or {}).get("paused") if isinstance(body, dict) else None)
        return {"status": g.status}

    def kick(self, gid: str, token: str | None, body: object) -> dict:
        """``POST /api/games/{id}/kick`` with ``{"player_id": N}``."""
        g = self.facilitator(gid, token).game
        g.kick((body or {}).get("player_id") if isinstance(body, dict) else None)
        return {"kicked": True}

    def debrief(self, gid: str, token: str | None) -> dict:
        """Verdict so far and every turn's moves (facilitator, or anyone once finished)."""
        c = self.caller(gid, token)
        if c.role != "facilitator" and not c.game.finished:
            raise GameError(403, "forbidden: the debrief opens to players when the game ends")
        return {"summary": c.game.summary(), "turns": c.game.turn_records}


_HUB: Hub | None = None


def set_hub(hub: Hub) -> None:
    """Make ``hub`` the process's hub (the server does this before serving pages)."""
    global _HUB
    _HUB = hub


def get_hub() -> Hub:
    """The process's hub."""
    if _HUB is None:
        raise RuntimeError("the wargame hub is not started (run 'lanthanide wargame')")
    return _HUB
