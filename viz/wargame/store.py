"""SQLite persistence for wargames (stdlib ``sqlite3``, WAL mode, one connection per thread).

What is stored is enough to rebuild every game after a restart: the model is deterministic
given its scenario, seed and inputs, so a game resumes by replaying its completed turns'
recorded moves and injected events (``Game.restore``). Tokens are stored as SHA-256 hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS games (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    config TEXT NOT NULL,
    facilitator_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    turn INTEGER NOT NULL,
    auto_advance INTEGER NOT NULL DEFAULT 0,
    deadline_at REAL
);
CREATE TABLE IF NOT EXISTS teams (
    game_id TEXT NOT NULL,
    state TEXT NOT NULL,
    code TEXT NOT NULL,
    PRIMARY KEY (game_id, state)
);
CREATE TABLE IF NOT EXISTS players (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    game_id TEXT NOT NULL,
    team TEXT NOT NULL,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    joined REAL NOT NULL,
    kicked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS moves (
    game_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    team TEXT NOT NULL,
    revision INTEGER NOT NULL,
    player_id INTEGER,
    moves TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (game_id, turn, team, revision)
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    game_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    sender TEXT NOT NULL,
    sender_name TEXT NOT NULL,
    recipient TEXT NOT NULL,
    text TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS injects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    game_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    label TEXT NOT NULL,
    event TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    game_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    date_from TEXT NOT NULL,
    date_to TEXT NOT NULL,
    advanced REAL NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (game_id, turn)
);
CREATE TABLE IF NOT EXISTS timeseries (
    game_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    parquet BLOB NOT NULL,
    PRIMARY KEY (game_id, turn)
);
CREATE INDEX IF NOT EXISTS moves_by_turn ON moves (game_id, turn);
CREATE INDEX IF NOT EXISTS messages_by_game ON messages (game_id, id);
"""


def default_db_path() -> Path:
    """``$XDG_DATA_HOME/lanthanide/wargame.db`` (or ``~/.local/share/lanthanide/wargame.db``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "lanthanide" / "wargame.db"


def token_hash(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


class Store:
    """All wargame tables in one SQLite file.

    Each thread gets its own connection (``sqlite3`` connections are not shared across
    threads); writes are serialised by one lock and committed at once.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        with self._lock:
            con = self._con()
            con.executescript(SCHEMA)
            con.commit()

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30.0)
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA foreign_keys=ON")
            self._local.con = con
        return con

    def write(self, sql: str, args: tuple = ()) -> int:
        """Run one write statement and commit; return the last row id."""
        with self._lock:
            con = self._con()
            cur = con.execute(sql, args)
            con.commit()
            return int(cur.lastrowid or 0)

    def write_many(self, statements: list[tuple[str, tuple]]) -> None:
        """Run several writes in one transaction."""
        with self._lock:
            con = self._con()
            try:
                for sql, args in statements:
                    con.execute(sql, args)
                con.commit()
            except BaseException:
                con.rollback()
                raise

    def rows(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        """Run a query."""
        return self._con().execute(sql, args).fetchall()

    # ------------------------------------------------------------------ games

    def create_game(self, gid: str, config: dict, fac_token: str, codes: dict[str, str]) -> None:
        """A new game with its teams' join codes."""
        now = time.time()
        stmts = [
            (
                "INSERT INTO games (id, created, config, facilitator_hash, status, turn) "
                "VALUES (?, ?, ?, ?, 'running', 0)",
                (gid, now, json.dumps(config), token_hash(fac_token)),
            )
        ]
        for state, code in codes.items():
            stmts.append(
                ("INSERT INTO teams (game_id, state, code) VALUES (?, ?, ?)", (gid, state, code))
            )
        self.write_many(stmts)

    def games(self) -> list[sqlite3.Row]:
        """Every game, oldest first."""
        return self.rows("SELECT * FROM games ORDER BY created")

    def set_game(self, gid: str, **fields) -> None:
        """Update status, turn, auto_advance or deadline_at."""
        keys = ", ".join(f"{k} = ?" for k in fields)
        self.write(f"UPDATE games SET {keys} WHERE id = ?", (*fields.values(), gid))

    def teams(self, gid: str) -> dict[str, str]:
        """``{state: join code}``."""
        return {
            r["state"]: r["code"] for r in self.rows("SELECT * FROM teams WHERE game_id=?", (gid,))
        }

    # ------------------------------------------------------------------ players

    def add_player(self, gid: str, team: str, name: str, token: str) -> int:
        """Record a player who joined; return its id."""
        return self.write(
            "INSERT INTO players (game_id, team, name, token_hash, joined) VALUES (?, ?, ?, ?, ?)",
            (gid, team, name, token_hash(token), time.time()),
        )

    def players(self, gid: str) -> list[sqlite3.Row]:
        """The game's players in joining order."""
        return self.rows("SELECT * FROM players WHERE game_id=? ORDER BY id", (gid,))

    def kick(self, gid: str, pid: int) -> None:
        """Revoke a player's token."""
        self.write("UPDATE players SET kicked = 1 WHERE game_id=? AND id=?", (gid, pid))

    # ------------------------------------------------------------------ moves, messages, injects

    def add_move(self, gid: str, turn: int, team: str, pid: int | None, moves: dict) -> int:
        """Store a revision of a team's moves for a turn; return its revision number."""
        with self._lock:
            con = self._con()
            row = con.execute(
                "SELECT COALESCE(MAX(revision), 0) FROM moves "
                "WHERE game_id=? AND turn=? AND team=?",
                (gid, turn, team),
            ).fetchone()
            rev = int(row[0]) + 1
            con.execute(
                "INSERT INTO moves VALUES (?, ?, ?, ?, ?, ?, ?)",
                (gid, turn, team, rev, pid, json.dumps(moves), time.time()),
            )
            con.commit()
        return rev

    def moves(self, gid: str, turn: int | None = None) -> list[sqlite3.Row]:
        """Every revision (of one turn, or all), in order."""
        if turn is None:
            return self.rows(
                "SELECT * FROM moves WHERE game_id=? ORDER BY turn, team, revision", (gid,)
            )
        return self.rows(
            "SELECT * FROM moves WHERE game_id=? AND turn=? ORDER BY team, revision", (gid, turn)
        )

    def add_message(
        self, gid: str, turn: int, sender: str, name: str, recipient: str, text: str, when: float
    ) -> int:
        """Store a message sent at ``when`` (epoch seconds); return its id."""
        return self.write(
            "INSERT INTO messages (game_id, turn, sender, sender_name, recipient, text, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (gid, turn, sender, name, recipient, text, when),
        )

    def messages(self, gid: str) -> list[sqlite3.Row]:
        """All messages of a game in order."""
        return self.rows("SELECT * FROM messages WHERE game_id=? ORDER BY id", (gid,))

    def add_inject(self, gid: str, turn: int, label: str, event: dict) -> int:
        """Store an event the facilitator injected for the start of ``turn``."""
        return self.write(
            "INSERT INTO injects (game_id, turn, label, event, created) VALUES (?, ?, ?, ?, ?)",
            (gid, turn, label, json.dumps(event), time.time()),
        )

    def injects(self, gid: str) -> list[sqlite3.Row]:
        """All injects of a game in order."""
        return self.rows("SELECT * FROM injects WHERE game_id=? ORDER BY id", (gid,))

    # ------------------------------------------------------------------ turns

    def add_turn(
        self, gid: str, turn: int, date_from: str, date_to: str, record: dict, parquet: bytes
    ) -> None:
        """Record a completed turn and its new time-series rows; update the game's turn."""
        self.write_many(
            [
                (
                    "INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?)",
                    (gid, turn, date_from, date_to, time.time(), json.dumps(record)),
                ),
                ("INSERT INTO timeseries VALUES (?, ?, ?)", (gid, turn, parquet)),
                ("UPDATE games SET turn = ? WHERE id = ?", (turn + 1, gid)),
            ]
        )

    def turns(self, gid: str) -> list[sqlite3.Row]:
        """Completed turns in order."""
        return self.rows("SELECT * FROM turns WHERE game_id=? ORDER BY turn", (gid,))

    def timeseries(self, gid: str) -> list[bytes]:
        """Each completed turn's time-series rows (Parquet bytes), in order."""
        rows = self.rows("SELECT parquet FROM timeseries WHERE game_id=? ORDER BY turn", (gid,))
        return [bytes(r["parquet"]) for r in rows]
