"""One wargame room: the scenario's model and its counterfactual, advanced turn by turn.

The engine imports no Solara. A :class:`Game` owns two :class:`abm.model.RareEarthModel`
instances with the same seed: the scenario and its counterfactual
(:func:`abm.scenario.counterfactual`: coercive events removed and coercion disabled). Every state
a team plays gets an :class:`agents.strategies.HumanStrategy` in both, wrapping the strategy its
scenario configures; a turn with no submission (an empty seat, a late team) is played by that
strategy. A team's moves are lever values (:mod:`viz.wargame.levers`) turned into the same
actions a strategy returns, so the counterfactual drops a team's coercive moves exactly as it
drops a coercive scenario event.

All inputs are recorded (:mod:`viz.wargame.store`); the models are deterministic given the
scenario, seed, moves and injects, so :meth:`Game.restore` rebuilds a game after a restart by
replaying its completed turns.
"""

from __future__ import annotations

import io
import json
import math
import secrets
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, field

import mesa
import numpy as np
import pandas as pd

from abm.constants import COUNTRIES, GOODS, ITEMS, STAGES
from abm.model import RareEarthModel, ScenarioRuntimeError
from abm.scenario import ScenarioError, builtin_names, counterfactual, load_scenario, parse_month
from agents.strategies import HumanStrategy
from viz.wargame import levers as lv
from viz.wargame.store import Store, token_hash

PRIVATE_CHOICES = ("budget", "stockpile", "intelligence")
CONNECTED_SECONDS = 15.0
"""A player counts as connected if seen (any request or page refresh) this recently."""
MAX_TURNS = 200
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
SPENDING_LOG = ("finance", "substitution_rd", "budget", "recycling_subsidy", "stockpile")


class GameError(Exception):
    """A refused request: HTTP-like ``status`` and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class GameConfig:
    """What the facilitator chose when setting the game up."""

    scenario: str
    human_teams: list[str]
    turn_months: int = 3
    turns: int = 8
    seed: int | None = None
    start: str | None = None
    firms: int | None = None
    deadline_seconds: float | None = None
    private: list[str] = field(default_factory=lambda: list(PRIVATE_CHOICES))
    title: str = ""

    @classmethod
    def parse(cls, body: object) -> GameConfig:
        """Validate a ``POST /api/games`` body; raise GameError(400) naming the field."""
        if not isinstance(body, dict):
            raise GameError(400, "body: expected a JSON object")
        known = {f for f in cls.__dataclass_fields__}
        for key in body:
            if key not in known:
                raise GameError(400, f"{key}: unknown field; allowed: {', '.join(sorted(known))}")
        scen = body.get("scenario", "taiwan-crisis")
        if not isinstance(scen, str) or scen not in builtin_names():
            raise GameError(
                400, f"scenario: {scen!r} is not a built-in; allowed: {', '.join(builtin_names())}"
            )
        teams = body.get("human_teams")
        if (
            not isinstance(teams, list)
            or not teams
            or any(t not in COUNTRIES for t in teams)
            or len(set(teams)) != len(teams)
        ):
            raise GameError(
                400,
                "human_teams: expected a non-empty list of different states drawn from: "
                + ", ".join(COUNTRIES),
            )

        def whole(name, lo, hi, default):
            v = body.get(name, default)
            if v is None and default is None:
                return None
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise GameError(
                    400, f"{name}: {v!r} is not allowed; allowed whole numbers {lo} to {hi}"
                )
            return v

        turn_months = whole("turn_months", 1, 24, 3)
        turns = whole("turns", 1, MAX_TURNS, 8)
        if turn_months * turns > 600:
            raise GameError(400, "turns: turns x turn_months must be at most 600 months")
        seed = whole("seed", 0, 2**31 - 1, None)
        firms = whole("firms", 50, 5000, None)
        dl = body.get("deadline_seconds")
        if dl is not None and (
            isinstance(dl, bool) or not isinstance(dl, int | float) or not 10 <= dl <= 86400
        ):
            raise GameError(
                400, f"deadline_seconds: {dl!r} is not allowed; allowed 10 to 86400 or null"
            )
        start = body.get("start")
        if start is not None:
            try:
                parse_month(start, "start")
            except ScenarioError as exc:
                raise GameError(400, str(exc)) from None
        private = body.get("private", list(PRIVATE_CHOICES))
        if not isinstance(private, list) or any(p not in PRIVATE_CHOICES for p in private):
            raise GameError(
                400, f"private: expected a list drawn from: {', '.join(PRIVATE_CHOICES)}"
            )
        title = body.get("title", "")
        if not isinstance(title, str) or len(title) > 120:
            raise GameError(400, "title: expected text of at most 120 characters")
        return cls(scen, list(teams), turn_months, turns, seed, start, firms, dl, private, title)


INJECT_PRESETS: dict[str, dict] = {
    "mine_accident": {
        "label": "Mine accident: {country} loses 30% of its mining capacity",
        "event": {"type": "capacity_shock", "kind": "miner", "share": -0.3},
        "default_country": "China",
    },
    "refinery_fire": {
        "label": "Refinery fire: {country} loses 25% of its separation capacity",
        "event": {"type": "capacity_shock", "kind": "separator", "share": -0.25},
        "default_country": "Australia",
    },
    "new_deposit": {
        "label": "New deposit found in {country}: 20,000 t REO/yr to develop",
        "event": {"type": "new_deposit", "t_per_year": 20000.0},
        "default_country": "Australia",
    },
    "dispute": {
        "label": "A new dispute: {coercer} demands a concession from {target}",
        "event": {"type": "dispute", "tension": 1.0, "demand": "a political concession"},
        "default_country": None,
    },
    "wto_ruling": {
        "label": "WTO ruling: {coercer} must drop its export quotas and taxes",
        "event": {"type": "wto_ruling"},
        "default_country": None,
    },
    "ev_boom": {
        "label": "EV boom: world demand for NdPr up 20%",
        "event": {"type": "demand_shock", "good": "ndpr", "share": 0.2},
        "default_country": None,
    },
    "emergency_budget": {
        "label": "Emergency budget: {country} gets US$ 1 bn more for rare-earth policy",
        "event": {"type": "budget", "usd": 1e9},
        "default_country": "Japan",
    },
}
"""Injects a facilitator can pick from a list (each becomes a scenario event, or, for a WTO
ruling, the lifting of the coercer's export quotas and taxes)."""


def new_code() -> str:
    """A short join code (8 characters, no look-alike letters)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))


def _clean(x):
    """JSON-safe numbers (NaN and inf become None)."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


@dataclass
class Player:
    """A person in a team."""

    id: int
    team: str
    name: str
    token_hash: str
    kicked: bool = False
    last_seen: float = 0.0


class Game:
    """One room: two models, the teams, their moves and the record of what happened.

    All public methods take the game's lock; a change bumps :attr:`version` and wakes
    :meth:`wait_change` so that pages re-render.
    """

    def __init__(self, gid: str, config: GameConfig, store: Store | None, codes: dict[str, str]):
        self.id = gid
        self.config = config
        self.store = store
        self.codes = codes  # state -> join code
        self.lock = threading.RLock()
        self._changed = threading.Condition()
        self.version = 0
        overrides = {"months": config.turns * config.turn_months}
        for key in ("seed", "firms", "start"):
            if getattr(config, key) is not None:
                overrides[key] = getattr(config, key)
        try:
            self.scn = load_scenario(config.scenario, **overrides)
        except ScenarioError as exc:
            raise GameError(400, str(exc)) from None
        self.cf_scn = counterfactual(self.scn)
        self.model = RareEarthModel(self.scn, seed=self.scn.seed, run="scenario")
        self.cf_model = RareEarthModel(self.cf_scn, seed=self.scn.seed, run="counterfactual")
        for m in (self.model, self.cf_model):
            for team in config.human_teams:
                st = m.states[COUNTRIES.index(team)]
                st.strategy = HumanStrategy(st.strategy)
        self.turn = 0  # completed turns
        self.status = "running"  # running, paused, finished
        self.auto_advance = False
        self.deadline_at: float | None = None
        self._pause_left: float | None = None
        self.players: dict[int, Player] = {}
        self.moves: dict[str, dict[str, float]] = {}  # team -> latest moves this turn
        self.revisions: dict[str, int] = {}
        self.messages: list[dict] = []
        self.injects: list[dict] = []  # every inject: {"turn", "label", "event", "id"}
        self.turn_records: list[dict] = []
        self._frames: tuple[pd.DataFrame, pd.DataFrame] | None = None
        self._summary: tuple[int, dict] | None = None
        self._cache: dict[tuple, object] = {}
        self._making: dict[tuple, threading.Lock] = {}
        self._start_clock()

    def cached(self, key, make):
        """A value computed once per turn and shared by every page (e.g. chart data).

        The game's lock is held only to look the value up and to store it; ``make()`` runs
        under a lock of its own key, so that a page waiting for one team's charts does not
        hold up the others' pages or the API. ``make`` must read the game through its locked
        methods (``frames()``), or be called with the game's lock held (``world()``).
        """
        with self.lock:
            k = (self.turn, key)
            if k in self._cache:
                return self._cache[k]
            if any(old[0] != self.turn for old in self._cache):
                self._cache = {o: v for o, v in self._cache.items() if o[0] == self.turn}
                self._making = {o: v for o, v in self._making.items() if o[0] == self.turn}
            making = self._making.setdefault(k, threading.Lock())
        with making:
            with self.lock:
                if k in self._cache:
                    return self._cache[k]
            value = make()
            with self.lock:
                self._cache[k] = value
            return value

    # ------------------------------------------------------------------ notification

    def bump(self) -> None:
        """Record a change and wake every page waiting for one."""
        with self._changed:
            self.version += 1
            self._changed.notify_all()

    def wait_change(self, since: int, timeout: float) -> int:
        """Block until the version differs from ``since`` (or ``timeout`` s); return it."""
        with self._changed:
            if self.version == since:
                self._changed.wait(timeout)
            return self.version

    # ------------------------------------------------------------------ calendar

    @property
    def finished(self) -> bool:
        """Every turn played."""
        return self.turn >= self.config.turns

    def turn_dates(self, k: int) -> tuple[str, str]:
        """First and last month of turn ``k`` (0-based)."""
        n = self.config.turn_months
        return self.model.date_of(k * n), self.model.date_of(k * n + n - 1)

    def _start_clock(self) -> None:
        dl = self.config.deadline_seconds
        self.deadline_at = time.time() + dl if dl and self.status == "running" else None

    # ------------------------------------------------------------------ players

    def add_player(self, code: str, name: str) -> tuple[str, str, int]:
        """A player joins with a team code; return (token, team, player id)."""
        if not isinstance(code, str) or not isinstance(name, str):
            raise GameError(400, "code, name: expected text")
        name = name.strip()
        if not 1 <= len(name) <= 40:
            raise GameError(400, "name: expected a display name of 1 to 40 characters")
        team = next((t for t, c in self.codes.items() if c == code.strip().upper()), None)
        if team is None:
            raise GameError(400, "code: not a join code of this game")
        token = secrets.token_urlsafe(24)
        with self.lock:
            pid = (
                self.store.add_player(self.id, team, name, token)
                if self.store
                else len(self.players) + 1
            )
            self.players[pid] = Player(pid, team, name, token_hash(token), False, time.time())
        self.bump()
        return token, team, pid

    def kick(self, pid: object) -> None:
        """Revoke a player's token (the player's page and API calls are refused from now on)."""
        with self.lock:
            if not isinstance(pid, int) or pid not in self.players:
                raise GameError(400, f"player_id: {pid!r} is not a player of this game")
            self.players[pid].kicked = True
            if self.store:
                self.store.kick(self.id, pid)
        self.bump()

    def seen(self, pid: int) -> None:
        """Note that a player is connected."""
        p = self.players.get(pid)
        if p is not None:
            p.last_seen = time.time()

    def team_players(self, team: str) -> list[Player]:
        """Active (not kicked) players of a team."""
        return [p for p in self.players.values() if p.team == team and not p.kicked]

    # ------------------------------------------------------------------ moves

    def set_moves(self, team: str, moves: object, pid: int | None = None) -> dict:
        """A team submits (or revises) its moves for the current turn.

        Levers not named keep their value. Returns the team's moves now in force for the turn.
        """
        with self.lock:
            self._check_open()
            if team not in self.config.human_teams:
                raise GameError(403, f"team: {team} is not played by people in this game")
            try:
                checked = lv.check_moves(self.model, team, moves)
            except lv.MoveError as exc:
                raise GameError(400, str(exc)) from None
            merged = {**self.moves.get(team, {}), **checked}
            if self.store:
                rev = self.store.add_move(self.id, self.turn, team, pid, merged)
            else:
                rev = self.revisions.get(team, 0) + 1
            self.moves[team] = merged
            self.revisions[team] = rev
            all_in = self.auto_advance and self._all_submitted()
        self.bump()
        if all_in:
            self.advance(reason="all submitted")
        return {"team": team, "turn": self.turn, "revision": rev, "moves": merged}

    def _all_submitted(self) -> bool:
        seated = [t for t in self.config.human_teams if self.team_players(t)]
        return bool(seated) and all(t in self.moves for t in seated)

    def _check_open(self) -> None:
        if self.status == "finished" or self.finished:
            raise GameError(409, "game: finished; no more moves")
        if self.status == "paused":
            raise GameError(409, "game: paused by the facilitator; try again when it resumes")

    # ------------------------------------------------------------------ facilitator actions

    def set_paused(self, paused: object) -> None:
        """Pause (moves refused, deadline clock stopped) or resume."""
        if not isinstance(paused, bool):
            raise GameError(400, "paused: expected true or false")
        with self.lock:
            if self.finished:
                raise GameError(409, "game: finished")
            if paused and self.status == "running":
                self.status = "paused"
                self._pause_left = (self.deadline_at - time.time()) if self.deadline_at else None
                self.deadline_at = None
            elif not paused and self.status == "paused":
                self.status = "running"
                if self._pause_left is not None:
                    self.deadline_at = time.time() + max(self._pause_left, 5.0)
                self._pause_left = None
            self._persist_status()
        self.bump()

    def set_auto_advance(self, on: bool) -> None:
        """Advance by itself once every seated team has submitted."""
        with self.lock:
            self.auto_advance = bool(on)
            self._persist_status()
            ready = self.auto_advance and self._all_submitted() and self.status == "running"
        self.bump()
        if ready:
            self.advance(reason="all submitted")

    def _persist_status(self) -> None:
        if self.store:
            self.store.set_game(
                self.id,
                status=self.status,
                auto_advance=int(self.auto_advance),
                deadline_at=self.deadline_at,
            )

    def inject(self, body: object) -> dict:
        """Queue an event for the start of the next turn: a preset or a scenario event table."""
        if not isinstance(body, dict):
            raise GameError(400, "body: expected a JSON object")
        with self.lock:
            if self.finished:
                raise GameError(409, "game: finished")
            date = self.model.date
            if "preset" in body:
                name = body["preset"]
                if name not in INJECT_PRESETS:
                    raise GameError(
                        400, f"preset: {name!r} is unknown; allowed: {', '.join(INJECT_PRESETS)}"
                    )
                p = INJECT_PRESETS[name]
                country = body.get("country") or p["default_country"]
                if country is not None and country not in COUNTRIES:
                    raise GameError(400, f"country: {country!r}; allowed: {', '.join(COUNTRIES)}")
                event = dict(p["event"])
                if event["type"] == "dispute":
                    event |= {"coercer": self.scn.coercer, "target": self.scn.target}
                elif event["type"] == "wto_ruling":
                    event["country"] = self.scn.coercer
                elif event["type"] != "demand_shock":
                    event["country"] = country
                label = p["label"].format(
                    country=country, coercer=self.scn.coercer, target=self.scn.target
                )
            elif "event" in body:
                event = body["event"]
                if not isinstance(event, dict):
                    raise GameError(400, "event: expected a scenario event table (an object)")
                label = str(
                    body.get("label") or f"{event.get('type')} (written by the facilitator)"
                )
            else:
                raise GameError(400, "body: give 'preset' (a name) or 'event' (a scenario event)")
            if event.get("type") != "wto_ruling":
                from abm.scenario import parse_event

                try:
                    parse_event({**event, "date": date}, 0, self.scn.start_ym)
                except ScenarioError as exc:
                    raise GameError(400, str(exc).replace("events[0]", "event")) from None
            rid = (
                self.store.add_inject(self.id, self.turn, label, event)
                if self.store
                else len(self.injects) + 1
            )
            rec = {"id": rid, "turn": self.turn, "date": date, "label": label, "event": event}
            self.injects.append(rec)
        self.bump()
        return rec

    def message(self, sender: str, name: str, to: object, text: object) -> dict:
        """Send a message (diplomacy): to ``all``, a team, or ``facilitator``."""
        allowed = ("all", "facilitator", *self.config.human_teams)
        if to not in allowed:
            raise GameError(400, f"to: {to!r} is not allowed; allowed: {', '.join(allowed)}")
        if not isinstance(text, str) or not 1 <= len(text.strip()) <= 1000:
            raise GameError(400, "text: expected a message of 1 to 1000 characters")
        now = time.time()
        with self.lock:
            mid = (
                self.store.add_message(self.id, self.turn, sender, name, to, text.strip(), now)
                if self.store
                else len(self.messages) + 1
            )
            rec = {
                "id": mid,
                "turn": self.turn,
                "from": sender,
                "name": name,
                "to": to,
                "text": text.strip(),
                "time": now,
            }
            self.messages.append(rec)
        self.bump()
        return rec

    # ------------------------------------------------------------------ advancing

    def advance(self, reason: str = "facilitator") -> dict:
        """Close the turn: apply injects and moves, step both models ``turn_months`` months."""
        with self.lock:
            if self.finished:
                raise GameError(409, "game: finished; every turn has been played")
            k = self.turn
            moves = {t: dict(v) for t, v in self.moves.items()}
            injects = [i for i in self.injects if i["turn"] == k]
            record = self._play_turn(k, moves, injects)
            record["reason"] = reason
            record["revisions"] = dict(self.revisions)
            frames = self._new_frames()
            run_df, cf_df = frames
            d0 = pd.Timestamp(record["date_from"] + "-01")
            new = pd.concat(
                [run_df[run_df["date"] >= d0], cf_df[cf_df["date"] >= d0]], ignore_index=True
            )
            buf = io.BytesIO()
            new.to_parquet(buf, index=False)
            if self.store:
                self.store.add_turn(
                    self.id, k, record["date_from"], record["date_to"], record, buf.getvalue()
                )
            self.turn_records.append(record)
            self.turn = k + 1
            self.moves, self.revisions = {}, {}
            if self.finished:
                self.status = "finished"
                self.deadline_at = None
            else:
                self._start_clock()
            self._persist_status()
        self.bump()
        return record

    def _play_turn(self, k: int, moves: dict, injects: list[dict]) -> dict:
        """Apply one turn's inputs to both models and step them (also used by the replay)."""
        n = self.config.turn_months
        month = k * n
        date_from, date_to = self.turn_dates(k)
        for inj in injects:
            for m in (self.model, self.cf_model):
                self._apply_inject(m, inj["event"])
        actions, played_by = {}, {}
        for team in self.config.human_teams:
            c = COUNTRIES.index(team)
            if team in moves:
                acts = lv.to_actions(self.model, team, moves[team])
                actions[team] = acts
                played_by[team] = "team"
            else:
                acts = None
                played_by[team] = f"strategy ({self.scn.country(team).strategy})"
            for m in (self.model, self.cf_model):
                m.states[c].strategy.submit(month, acts)
        for _ in range(n):
            if self.model.month >= self.model.horizon:
                break
            self.model.step()
            self.cf_model.step()
        self._summary = None
        return {
            "turn": k,
            "date_from": date_from,
            "date_to": date_to,
            "moves": moves,
            "actions": actions,
            "played_by": played_by,
            "injects": [i["id"] for i in injects],
        }

    @staticmethod
    def _apply_inject(model: RareEarthModel, event: dict) -> None:
        if event.get("type") == "wto_ruling":
            for m in list(model.policy.measures.values()):
                if (
                    m.type in ("export_quota", "export_tax")
                    and m.params.get("exporter") == event["country"]
                ):
                    model.apply_action({"type": "lift", "id": m.id}, "facilitator")
            return
        try:
            model.apply_action(dict(event), "facilitator")
        except (ScenarioError, ScenarioRuntimeError):
            model.policy.log.append((model.month, "facilitator", f"inject refused: {event}"))

    def _new_frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        self._frames = (
            self.model.recorder.frame(self.model.dates),
            self.cf_model.recorder.frame(self.cf_model.dates),
        )
        return self._frames

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """(scenario, counterfactual) time series so far; None before the first turn."""
        with self.lock:
            return self._frames

    # ------------------------------------------------------------------ restore

    @classmethod
    def restore(cls, store: Store, row) -> Game:
        """Rebuild a stored game by replaying its completed turns' moves and injects."""
        gid = row["id"]
        config = GameConfig(**json.loads(row["config"]))
        game = cls(gid, config, store, store.teams(gid))
        for p in store.players(gid):
            game.players[p["id"]] = Player(
                p["id"], p["team"], p["name"], p["token_hash"], bool(p["kicked"])
            )
        game.injects = [
            {
                "id": r["id"],
                "turn": r["turn"],
                "label": r["label"],
                "event": json.loads(r["event"]),
                "date": game.turn_dates(r["turn"])[0],
            }
            for r in store.injects(gid)
        ]
        game.messages = [
            {
                "id": r["id"],
                "turn": r["turn"],
                "from": r["sender"],
                "name": r["sender_name"],
                "to": r["recipient"],
                "text": r["text"],
                "time": r["created"],
            }
            for r in store.messages(gid)
        ]
        for t in store.turns(gid):
            rec = json.loads(t["record"])
            k = rec["turn"]
            injects = [i for i in game.injects if i["turn"] == k]
            game._play_turn(k, rec["moves"], injects)
            game.turn_records.append(rec)
            game.turn = k + 1
        if game.turn:
            game._new_frames()
        for r in store.moves(gid, game.turn):  # moves submitted for the open turn
            game.moves[r["team"]] = json.loads(r["moves"])
            game.revisions[r["team"]] = r["revision"]
        game.status = "finished" if game.finished else row["status"]
        game.auto_advance = bool(row["auto_advance"])
        if game.status == "paused":
            game.deadline_at = None
        else:
            game._start_clock()
        return game

    def close(self) -> None:
        """Release the models (Mesa keeps every model alive otherwise)."""
        for m in (self.model, self.cf_model):
            mesa.Agent._ids.pop(m, None)

    # ------------------------------------------------------------------ views

    def _latest(self, df: pd.DataFrame, variable: str, **dims) -> pd.DataFrame:
        sub = df[df["variable"] == variable]
        for k, v in dims.items():
            sub = sub[sub[k] == v]
        if sub.empty:
            return sub
        return sub[sub["date"] == sub["date"].max()]

    def world(self) -> dict:
        """What everyone sees: prices, China's shares, measures in force, disputes, news."""
        with self.lock:  # _world reads the live model
            return self.cached(("world",), self._world)

    def _world(self) -> dict:
        m = self.model
        out: dict = {"date": m.date, "prices": {}, "china_share": {}}
        frames = self._frames
        if frames is None:
            for g in GOODS:
                i = ITEMS.index((g, "oxide"))
                out["prices"][g] = {"usd_per_kg": float(m.p0[i]), "multiple": 1.0}
        else:
            run_df = frames[0]
            pr = self._latest(run_df, "price", segment="world", stage="oxide")

            for g in GOODS:
                v = pr.loc[pr["good"] == g, "value"]
                p0 = float(m.p0[ITEMS.index((g, "oxide"))])
                val = float(v.iloc[0]) if len(v) else p0
                out["prices"][g] = {"usd_per_kg": val, "multiple": val / p0}
            sh = self._latest(run_df, "china_share")
            for s in STAGES:
                v = sh.loc[sh["stage"] == s, "value"]
                out["china_share"][s] = float(v.iloc[0]) if len(v) else None
        out["measures"] = [
            {
                "id": ms.id,
                "type": ms.type,
                "by": ms.origin,
                "since": m.date_of(ms.start),
                "until": m.date_of(ms.end) if ms.end is not None else None,
                "detail": _detail(ms.type, ms.params),
            }
            for ms in m.policy.measures.values()
            if ms.type not in ("offtake", "production_quota") or ms.origin != "scenario"
        ]
        out["disputes"] = [
            {
                "id": d.id,
                "coercer": COUNTRIES[d.coercer],
                "target": COUNTRIES[d.target],
                "demand": d.demand,
                "tension": d.tension,
                "since": m.date_of(d.start),
                "open": d.active,
                "conceded": m.date_of(d.conceded_month) if d.conceded_month is not None else None,
            }
            for d in m.policy.disputes.values()
        ]
        return out

    def news(self, team: str | None) -> list[dict]:
        """The policy log as news; another team's spending is hidden when budgets are private."""
        out = []
        hide = team is not None and "budget" in self.config.private
        for month, origin, text in self.model.policy.log:
            if (
                hide
                and origin not in (team, "scenario", "facilitator")
                and text.split(" ")[0] in SPENDING_LOG
            ):
                continue
            if text.startswith(("offtake", "production_quota")) and origin == "scenario":
                continue
            words = text.split(" ")
            ms = self.model.policy.measures.get(words[1]) if len(words) == 2 else None
            if ms is not None:
                text = f"{words[0]}: {_detail(ms.type, ms.params)}"
            out.append({"date": self.model.date_of(month), "by": origin, "text": text})
        return out[-60:]

    def country_block(self, country: str) -> dict:
        """A state's private numbers: budget, stockpile and intelligence."""
        m = self.model
        c = COUNTRIES.index(country)
        st = m.states[c]
        obs = m.observe(c) if m.month > 0 else None
        intel = {}
        if obs is not None:
            intel = {
                "fill": {f"{g}_{s}": float(obs.fill[i]) for i, (g, s) in enumerate(ITEMS)},
                "perceived_risk_of": {
                    COUNTRIES[x]: float(obs.risk_of[x]) for x in range(len(COUNTRIES)) if x != c
                },
                "import_share_from": {
                    COUNTRIES[x]: float(obs.import_share_from[x])
                    for x in range(len(COUNTRIES))
                    if obs.import_share_from[x] > 0.005
                },
                "pain": float(obs.pain),
                "price_multiple": {
                    f"{g}_{s}": float(obs.price_multiple[i]) for i, (g, s) in enumerate(ITEMS)
                },
            }
        lost = 0.0
        if self._frames is not None and self.turn_records:
            run_df = self._frames[0]
            d0 = pd.Timestamp(self.turn_records[-1]["date_from"] + "-01")
            sel = (
                (run_df["variable"] == "lost_output_usd")
                & (run_df["country"] == country)
                & (run_df["date"] >= d0)
            )
            lost = float(run_df.loc[sel, "value"].sum())
        return {
            "budget_usd": float(st.budget_usd),
            "spent_usd": float(st.spent_usd),
            "stockpile_t": {g: float(st.stockpile_t[j]) for j, g in enumerate(GOODS)},
            "stockpile_target_days": float(m.stockpile_target_days()[c]),
            "lost_output_last_turn_usd": lost,
            "intelligence": intel,
        }

    def teams_view(self, viewer: str | None) -> dict:
        """Per played state: who plays it, whether it has submitted; public parts of its block."""
        now = time.time()
        out = {}
        for t in self.config.human_teams:
            ps = self.team_players(t)
            entry = {
                "human": True,
                "players": [p.name for p in ps],
                "connected": sum(1 for p in ps if now - p.last_seen < CONNECTED_SECONDS),
                "submitted": t in self.moves,
            }
            if viewer is None or t == viewer:
                entry["revision"] = self.revisions.get(t, 0)
            shared = [k for k in PRIVATE_CHOICES if k not in self.config.private]
            if viewer is not None and t != viewer and shared:
                block = self.country_block(t)
                if "budget" in shared:
                    entry["budget_usd"] = block["budget_usd"]
                if "stockpile" in shared:
                    entry["stockpile_t"] = block["stockpile_t"]
                if "intelligence" in shared:
                    entry["intelligence"] = block["intelligence"]
            out[t] = entry
        return out

    def messages_for(self, team: str | None) -> list[dict]:
        """The messages a team (or, with None, the facilitator) may read."""
        if team is None:
            return list(self.messages)
        return [msg for msg in self.messages if msg["to"] in ("all", team) or msg["from"] == team]

    def state(self, team: str | None, facilitator: bool) -> dict:
        """The ``GET /state`` answer for a player of ``team`` or for the facilitator."""
        with self.lock:
            n = self.config.turn_months
            out = {
                "game_id": self.id,
                "title": self.config.title,
                "scenario": self.scn.name,
                "coercer": self.scn.coercer,
                "target": self.scn.target,
                "turn": self.turn,
                "turns": self.config.turns,
                "turn_months": n,
                "date": self.model.date,
                "turn_dates": list(self.turn_dates(self.turn)) if not self.finished else None,
                "status": "finished" if self.finished else self.status,
                "auto_advance": self.auto_advance,
                "deadline_in_seconds": (
                    max(self.deadline_at - time.time(), 0.0) if self.deadline_at else None
                ),
                "version": self.version,
                "teams": self.teams_view(None if facilitator else team),
                "world": self.world(),
                "news": self.news(None if facilitator else team),
                "messages": self.messages_for(None if facilitator else team),
                "private": list(self.config.private),
            }
            if team is not None and not facilitator:
                out["team"] = team
                out["levers"] = lv.lever_table(self.model, team) if not self.finished else {}
                out["moves"] = self.moves.get(team)
                out["me"] = self.country_block(team)
            if facilitator:
                out["join_codes"] = dict(self.codes)
                out["roster"] = [
                    {
                        "player_id": p.id,
                        "team": p.team,
                        "name": p.name,
                        "kicked": p.kicked,
                        "connected": (time.time() - p.last_seen) < CONNECTED_SECONDS,
                        "last_seen_seconds": round(time.time() - p.last_seen, 1)
                        if p.last_seen
                        else None,
                    }
                    for p in self.players.values()
                ]
                out["moves"] = {t: dict(v) for t, v in self.moves.items()}
                out["countries"] = {t: self.country_block(t) for t in COUNTRIES}
                out["levers"] = (
                    {t: lv.lever_table(self.model, t) for t in self.config.human_teams}
                    if not self.finished
                    else {}
                )
                out["injects_pending"] = [i for i in self.injects if i["turn"] == self.turn]
                out["inject_presets"] = {k: v["label"] for k, v in INJECT_PRESETS.items()}
            return _clean(out)

    def log(self) -> dict:
        """The facilitator's full record: turns, every move revision, injects, messages, events."""
        with self.lock:
            revisions = []
            if self.store:
                revisions = [
                    {
                        "turn": r["turn"],
                        "team": r["team"],
                        "revision": r["revision"],
                        "player_id": r["player_id"],
                        "moves": json.loads(r["moves"]),
                        "time": r["created"],
                    }
                    for r in self.store.moves(self.id)
                ]
            return _clean(
                {
                    "game_id": self.id,
                    "turn": self.turn,
                    "turns": list(self.turn_records),
                    "move_revisions": revisions,
                    "injects": list(self.injects),
                    "messages": list(self.messages),
                    "events": {
                        run: [
                            {"date": m.date_of(month), "by": who, "text": text}
                            for month, who, text in m.policy.log
                        ]
                        for run, m in (("scenario", self.model), ("counterfactual", self.cf_model))
                    },
                }
            )

    def summary(self) -> dict | None:
        """Verdict and outcomes so far (``experiments.runner.summarise``), cached per turn."""
        with self.lock:
            if self._frames is None:
                return None
            if self._summary is not None and self._summary[0] == self.turn:
                return self._summary[1]
            from experiments.runner import summarise

            s = _clean(summarise(self.scn, self._frames[0], self._frames[1]))
            self._summary = (self.turn, s)
            return s

    def export_zip(self) -> bytes:
        """The whole game as a zip: Parquet tables and JSON files."""
        with self.lock:
            buf = io.BytesIO()
            log = self.log()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:

                def parquet(name, df):
                    b = io.BytesIO()
                    df.to_parquet(b, index=False)
                    z.writestr(name, b.getvalue())

                if self._frames is not None:
                    parquet("timeseries.parquet", pd.concat(self._frames, ignore_index=True))
                mv = pd.DataFrame(
                    [
                        {
                            **{k: r[k] for k in ("turn", "team", "revision", "player_id", "time")},
                            "lever": lever,
                            "value": value,
                        }
                        for r in log["move_revisions"]
                        for lever, value in r["moves"].items()
                    ],
                    columns=["turn", "team", "revision", "player_id", "time", "lever", "value"],
                )
                parquet("moves.parquet", mv)
                parquet(
                    "messages.parquet",
                    pd.DataFrame(
                        log["messages"],
                        columns=["id", "turn", "from", "name", "to", "text", "time"],
                    ),
                )
                ev = pd.DataFrame(
                    [{"run": run, **e} for run, es in log["events"].items() for e in es],
                    columns=["run", "date", "by", "text"],
                )
                parquet("events.parquet", ev)
                inj = pd.DataFrame(
                    [
                        {
                            **{k: i[k] for k in ("id", "turn", "date", "label")},
                            "event": json.dumps(i["event"]),
                        }
                        for i in self.injects
                    ],
                    columns=["id", "turn", "date", "label", "event"],
                )
                parquet("injects.parquet", inj)
                z.writestr("turns.json", json.dumps(log["turns"], indent=2))
                z.writestr("summary.json", json.dumps(self.summary(), indent=2))
                z.writestr(
                    "game.json",
                    json.dumps(
                        {
                            "game_id": self.id,
                            "config": asdict(self.config),
                            "scenario": _clean(self.scn.to_dict()),
                            "seed": self.scn.seed,
                            "turn": self.turn,
                            "status": "finished" if self.finished else self.status,
                            "players": [
                                {
                                    "player_id": p.id,
                                    "team": p.team,
                                    "name": p.name,
                                    "kicked": p.kicked,
                                }
                                for p in self.players.values()
                            ],
                        },
                        indent=2,
                        default=str,
                    ),
                )
            return buf.getvalue()


def _detail(etype: str, params) -> str:
    """A measure's parameters in a few words, for the news and the projector."""
    p = {k: v for k, v in dict(params).items() if not k.startswith("_")}
    if etype == "licensing":
        goods = "/".join(p.get("goods") or ["all"])
        rate = p["approval_rate"]
        return f"{p['exporter']} -> {p.get('target', 'all')}: {goods}, {rate:.0%} approved"
    if etype == "embargo":
        return f"{p['exporter']} -> {p['target']}"
    if etype == "export_tax":
        return f"{p['exporter']}: {p['rate']:.0%}"
    if etype == "export_quota":
        return f"{p['exporter']}: {p['t_per_year']:,.0f} t/yr"
    if etype == "stockpile":
        return f"{p['country']}: {p['target_days']:.0f} days"
    if etype == "recycling_subsidy":
        return f"{p['country']}: US$ {p['usd_per_kg']:.0f}/kg"
    if etype == "permitting":
        return f"{p['country']}: {p['permit_months']} months"
    return ", ".join(f"{k}={v}" for k, v in p.items())
