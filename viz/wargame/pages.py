"""The wargame's Solara pages: home, join, player, facilitator console, projector, debrief.

The pages hold no game logic: every read and action goes through the process's
:class:`viz.wargame.hub.Hub` with the page's token, the same calls the JSON API makes. One game
object per room is shared by all pages; each page waits on the game's change signal in a
thread and re-renders when the game changes (``solara.reactive`` is per page, so it cannot carry
shared state).
"""

from __future__ import annotations

import functools
import json
import threading
import time
from urllib.parse import parse_qs, quote

import pandas as pd
import segno
import solara
import solara.widgets
from solara.components.input import use_change

from abm.constants import COUNTRIES
from abm.outcomes import outcome_label
from abm.scenario import builtin_names
from viz import charts as explorer_charts
from viz.components import Chart as StaticChart
from viz.components import LiveChart, Table
from viz.wargame import charts
from viz.wargame.game import INJECT_PRESETS, PRIVATE_CHOICES, GameError
from viz.wargame.hub import get_hub

COALESCE_SECONDS = 0.2
"""After a move or message, a page waits this long so that a burst causes one render (a new
turn renders at once)."""

CSS = """
.wg-big { font-size: 1.6em; font-weight: 600; }
.wg-huge { font-size: 2.6em; font-weight: 700; }
.wg-muted { color: #666; }
.wg-ok { color: #2e7d32; font-weight: 600; }
.wg-wait { color: #b26a00; font-weight: 600; }
.wg-msg { border-left: 3px solid #1f77b4; padding-left: 8px; margin: 4px 0; }
.wg-chart .vega-embed { width: 100%; }
.wg-md p, .wg-md ul { margin: 0 0 6px 0; }
.wg-md table { border-collapse: collapse; margin: 4px 0; }
.wg-md th, .wg-md td { border: 1px solid #ddd; padding: 2px 8px; text-align: left; }
"""


def _query() -> dict[str, str]:
    router = solara.use_router()
    q = parse_qs(router.search or "")
    return {k: v[0] for k, v in q.items()}


def use_live(game, player_id: int | None = None) -> int:
    """Re-render when the game changes; returns the game's version.

    With ``player_id``, the player also counts as connected while the page is open.
    """
    version, set_version = solara.use_state(game.version if game else 0)

    def watch(cancel):
        if game is None:
            return
        v, turn = game.version, game.turn
        while not cancel.is_set():
            nv = game.wait_change(v, 1.0)
            if player_id is not None:
                game.seen(player_id)
            if nv != v:
                if game.turn == turn:  # moves and messages: one render for a burst
                    time.sleep(COALESCE_SECONDS)
                v, turn = game.version, game.turn
                set_version(v)

    solara.use_thread(watch, dependencies=[game.id if game else None], intrusive_cancel=False)
    return version


def _money(x) -> str:
    if x is None:
        return "-"
    ax = abs(x)
    if ax >= 1e9:
        return f"US$ {x / 1e9:,.2f} bn"
    if ax >= 1e6:
        return f"US$ {x / 1e6:,.0f} m"
    return f"US$ {x:,.0f}"


def _pct(x) -> str:
    return "-" if x is None else f"{x:.0%}"


def _qr_svg(url: str, scale: int = 4) -> str:
    return segno.make(url, error="m").svg_inline(scale=scale)


_MD_LOCK = threading.Lock()
_MD_PARSER = None


@functools.lru_cache(maxsize=1024)
def md_html(text: str) -> str:
    """HTML of a short Markdown text (bold, italics, lists, tables), escaped, shared by all pages.

    Solara's ``Markdown`` builds a parser per component and sends every changed text as a new
    Vue template that each browser compiles; the pages re-render numbers every turn, so here
    each distinct text is converted once for all pages and shown as plain HTML. HTML in the
    text is escaped (names and event labels come from people).
    """
    global _MD_PARSER
    import markdown

    with _MD_LOCK:
        if _MD_PARSER is None:
            _MD_PARSER = markdown.Markdown(extensions=["tables"])
        _MD_PARSER.reset()
        return _MD_PARSER.convert(_esc_text(text))


def Md(text: str, classes: tuple[str, ...] = ()):
    """Markdown text as HTML (see :func:`md_html`)."""
    return solara.HTML(tag="div", unsafe_innerHTML=md_html(text), classes=["wg-md", *classes])


def _esc_text(s: str) -> str:
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def VegaLite(spec: dict):
    """A Vega-Lite chart with its data inline (drawn on a canvas; redrawn when it changes)."""
    with solara.Column(classes=["wg-chart"]) as box:
        StaticChart(spec)
    return box


def _wrapped(spec: dict, columns: int | None) -> dict:
    """Small multiples in a row of any length wrapped into ``columns`` columns (to fit a page)."""
    f = spec.get("facet")
    if columns is None or not isinstance(f, dict) or set(f) != {"column"}:
        return spec
    inner = {**spec["spec"], "width": min(spec["spec"].get("width", 240), 240)}
    return {**spec, "facet": f["column"], "columns": columns, "spec": inner}


class _Grown:
    """A chart's rows as shown so far, shared by every page of a game."""

    def __init__(self):
        self.lock = threading.Lock()
        self.table = Table()
        self.full: list[dict] | None = None
        self.last: str | None = None


_GROWN: dict[tuple, _Grown] = {}
_GROWN_LOCK = threading.Lock()


def grown_table(game, key: tuple, rows_fn) -> tuple[Table, str]:
    """The rows of one chart of ``game``, grown once a turn by the months just played.

    ``rows_fn(frames)`` returns the chart's rows for the whole game so far (``frames``: the
    game's (scenario, counterfactual) tables, or None before the first turn), each with a
    ``date``.
    Past months do not change, so the rows of earlier turns are kept and only the new months'
    rows are appended: every page's chart (:func:`viz.components.LiveChart`) then sends and
    draws just those, into a chart compiled once, instead of a new spec with the whole history
    for each of 40 pages. If earlier rows did change, the table is replaced (a new epoch) and
    each chart is drawn afresh. Returns the table and the last month played (the chart's
    ``stamp``: set on its element once drawn).
    """

    def update() -> tuple[Table, str]:
        with game.lock:  # the tables and the month they reach, of one and the same turn
            frames = game.frames()
            stamp = game.turn_records[-1]["date_to"] if game.turn_records else ""
        full = rows_fn(frames)
        with _GROWN_LOCK:
            g = _GROWN.setdefault((game.id, *key), _Grown())
        with g.lock:
            last = g.last
            before = [r for r in full if last is not None and r["date"] <= last]
            if g.full is not None and before == g.full:
                g.table.rows.extend(r for r in full if last is None or r["date"] > last)
            else:
                g.table.rows = list(full)
                g.table.epoch += 1
            g.full = full
            g.last = max((r["date"] for r in full), default=None)
        # the stamp says how far the chart shows the game (even when it had no new rows)
        return g.table, stamp

    return game.cached(("grown", *key), update)


def ExplorerView(
    game, key: tuple, view: str, runs=("scenario",), country=None, option=None, wrap=None
):
    """One of the explorer's views (``viz.charts.VIEWS``), from a state's point of view.

    ``runs`` picks the scenario and/or the counterfactual; ``country`` keeps only that state's
    rows of country-level variables (prices and shares stay world-wide); ``wrap`` puts the
    small multiples in at most that many columns. The rows are computed once a turn for all
    pages, and each page receives only the new months (:func:`grown_table`).
    """
    rows_fn, spec_fn = explorer_charts.VIEWS[view]
    opts = explorer_charts.VIEW_OPTIONS
    kw = {opts[view]: option} if option and view in opts else {}

    def rows(frames):
        if frames is None:
            return []
        parts = [
            f for f, r in zip(frames, ("scenario", "counterfactual"), strict=True) if r in runs
        ]
        ts = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        if country is not None:
            ts = ts[ts["country"].isna() | (ts["country"] == country)]
        return rows_fn(ts, **kw)

    spec = game.cached(("spec", *key), lambda: _wrapped(spec_fn(**kw), wrap))
    table, last = grown_table(game, ("explorer", *key), rows)
    with solara.Column(style={"overflow-x": "auto", "max-width": "100%"}) as box:
        LiveChart(spec, table, version=table.version, stamp=last)
    return box


def LineChart(game, key: tuple, series_fn, title: str, y_title: str, **kw):
    """A line chart (``charts.line_spec``) of ``series_fn(frames)``, grown once a turn.

    Its spec is built once, from no rows (its colours come from ``colours``), so a chart of one
    run: the counterfactual's dashes are not drawn.
    """
    spec = game.cached(
        ("line", *key),
        lambda: charts.line_spec(series_fn(None), title, y_title, data_name="table", **kw),
    )
    table, last = grown_table(
        game, ("line", *key), lambda frames: charts.records(series_fn(frames))
    )
    with solara.Column(classes=["wg-chart"]) as box:
        LiveChart(spec, table, version=table.version, stamp=last)
    return box


# ----------------------------------------------------------------------------- shared parts


@solara.component
def WorldSummary(w: dict, big: bool = False):
    """Public numbers (``state["world"]``): prices, China's shares, disputes, measures in force."""
    cls = "wg-huge" if big else "wg-big"
    with solara.Row(style={"flex-wrap": "wrap", "gap": "24px"}):
        for g, label in (
            ("ndpr", "NdPr oxide"),
            ("heavy", "Dy/Tb oxide"),
            ("light", "La/Ce oxide"),
        ):
            p = w["prices"][g]
            with solara.Column(gap="0px"):
                solara.Text(label, classes=["wg-muted"])
                solara.Text(f"${p['usd_per_kg']:,.0f}/kg  ({p['multiple']:.2f}x)", classes=[cls])
        for s, label in (("concentrate", "China's share of mining"), ("oxide", "of separation")):
            with solara.Column(gap="0px"):
                solara.Text(label, classes=["wg-muted"])
                solara.Text(_pct(w["china_share"].get(s)), classes=[cls])
    for d in w["disputes"]:
        status = (
            "open" if d["open"] else (f"conceded {d['conceded']}" if d["conceded"] else "closed")
        )
        Md(
            f"**Dispute** {d['coercer']} vs {d['target']}: *{d['demand'] or d['id']}* "
            f"(since {d['since']}, {status})"
        )
    if w["measures"]:
        rows = "\n".join(
            f"| {m['type']} | {m['by']} | {m['detail']} | {m['since']} |" for m in w["measures"]
        )
        Md("| measure | by | what | since |\n|---|---|---|---|\n" + rows)


@solara.component
def Submissions(teams: dict):
    """Which teams have submitted this turn (``state["teams"]``)."""
    parts = []
    for t, e in teams.items():
        mark = "submitted" if e["submitted"] else ("waiting" if e["players"] else "empty seat")
        parts.append(f"**{t}**: {mark}")
    Md("\u00a0 · \u00a0".join(parts))


@solara.component
def Messages(messages: list[dict], gid: str, token: str, teams: list[str], me: str | None):
    """The message channel (diplomacy with other teams and the facilitator).

    Its arguments are plain data, so the page re-renders it only when a message arrives.
    """
    to, set_to = solara.use_state("all")
    text, set_text = solara.use_state("")
    err, set_err = solara.use_state("")

    def send(to, text):
        get_hub().message(gid, token, {"to": to, "text": text})

    with solara.Card("Messages"):
        for m in messages[-12:]:
            who = m["from"] if m["from"] != "facilitator" else "Facilitator"
            solara.HTML(
                tag="div",
                unsafe_innerHTML=(
                    f"<b>{_esc(who)}</b> ({_esc(m['name'])}) to <b>{_esc(m['to'])}</b>: "
                    f"{_esc(m['text'])}"
                ),
                classes=["wg-msg"],
            )
        choices = ["all", "facilitator", *[t for t in teams if t != me]]
        solara.Select("to", value=to, values=choices, on_value=set_to)
        solara.InputText("message", value=text, on_value=set_text, continuous_update=True)

        def go():
            try:
                send(to, text)
                set_text("")
                set_err("")
            except GameError as exc:
                set_err(exc.message)

        solara.Button("Send", on_click=go, classes=["wg-send"])
        if err:
            solara.Error(err)


def _esc(s) -> str:
    return (
        str(s)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
    )


def _move_marks(state_turns: list[dict], team: str | None = None) -> list[dict]:
    out = []
    for rec in state_turns:
        for t, mv in rec.get("moves", {}).items():
            if team and t != team:
                continue
            text = ", ".join(f"{k}={v:g}" for k, v in mv.items()) or "no change"
            out.append({"date": rec["date_from"], "label": f"{t}: {text}"})
    return out


# ----------------------------------------------------------------------------- home and join


@solara.component
def Home():
    """Set up a game (facilitator) or join one (player)."""
    solara.Style(CSS)
    hub = get_hub()
    scen, set_scen = solara.use_state("taiwan-crisis")
    teams, set_teams = solara.use_state(["China", "Japan", "United States", "Australia"])
    months, set_months = solara.use_state(3)
    turns, set_turns = solara.use_state(8)
    start, set_start = solara.use_state("2025-10")
    deadline, set_deadline = solara.use_state(0)
    private, set_private = solara.use_state(list(PRIVATE_CHOICES))
    err, set_err = solara.use_state("")
    created, set_created = solara.use_state(None)
    gid, set_gid = solara.use_state("")
    code, set_code = solara.use_state("")
    router = solara.use_router()
    solara.Title("Lanthanide wargame")
    with solara.Columns([1, 1]):
        with solara.Card("Run a game (facilitator)"):
            solara.Select("scenario", value=scen, values=builtin_names(), on_value=set_scen)
            solara.SelectMultiple(
                "states played by teams",
                values=teams,
                all_values=list(COUNTRIES),
                on_value=set_teams,
            )
            solara.InputInt("months per turn", value=months, on_value=set_months)
            solara.InputInt("turns", value=turns, on_value=set_turns)
            solara.InputText(
                "start month (YYYY-MM, empty = the scenario's)", value=start, on_value=set_start
            )
            solara.SelectMultiple(
                "private to each team (others cannot see it)",
                values=private,
                all_values=list(PRIVATE_CHOICES),
                on_value=set_private,
            )
            solara.InputInt(
                "deadline per turn, seconds (0 = none)", value=deadline, on_value=set_deadline
            )

            def create():
                body = {
                    "scenario": scen,
                    "human_teams": list(teams),
                    "turn_months": months,
                    "turns": turns,
                }
                if start.strip():
                    body["start"] = start.strip()
                if deadline:
                    body["deadline_seconds"] = deadline
                body["private"] = list(private)
                try:
                    set_created(hub.create(body))
                    set_err("")
                except GameError as exc:
                    set_err(exc.message)

            solara.Button("Create game", on_click=create, color="primary", classes=["wg-create"])
            if err:
                solara.Error(err)
            if created:
                ftok = quote(created["facilitator_token"])
                url = f"/facilitator?game={created['game_id']}&token={ftok}"
                solara.Success(f"Game {created['game_id']} created. Keep the console link private.")
                solara.Button(
                    "Open the facilitator console",
                    on_click=lambda: router.push(url),
                    classes=["wg-open-console"],
                )
        with solara.Card("Join a game (player)"):
            solara.InputText("game id", value=gid, on_value=set_gid)
            solara.InputText("team code", value=code, on_value=set_code)
            solara.Button(
                "Next",
                on_click=lambda: router.push(
                    f"/join?game={gid.strip()}&code={code.strip().upper()}"
                ),
            )


@solara.component
def Join():
    """A player gives a display name and joins the team of the code."""
    solara.Style(CSS)
    q = _query()
    hub = get_hub()
    name, set_name = solara.use_state("")
    err, set_err = solara.use_state("")
    router = solara.use_router()
    gid, code = q.get("game", ""), q.get("code", "")
    team = None
    game = hub.games.get(gid)
    if game is not None:
        team = next((t for t, c in game.codes.items() if c == code.upper()), None)
    solara.Title("Join the wargame")
    with solara.Card("Join"):
        if team is None:
            solara.Error("This link has no valid game and team code. Ask your facilitator.")
            return
        Md(f"You are joining **{team}** in game `{gid}`.")
        solara.InputText("your name", value=name, on_value=set_name, continuous_update=True)

        def join():
            try:
                res = hub.join(gid, {"code": code, "name": name})
                router.push(f"/play?game={gid}&token={quote(res['player_token'])}")
            except GameError as exc:
                set_err(exc.message)

        solara.Button("Join", on_click=join, color="primary", classes=["wg-join"])
        if err:
            solara.Error(err)


# ----------------------------------------------------------------------------- player


@solara.component
def Play():
    """A team's page: its state's dashboard, levers, budget, messages.

    The page re-renders whenever the game changes (a move, a message, a new turn), so it is
    split into components whose arguments are plain data: reacton re-renders only those whose
    arguments changed (another team's move touches the submission line, not the charts).
    """
    solara.Style(CSS)
    q = _query()
    hub = get_hub()
    gid, token = q.get("game", ""), q.get("token", "")
    game = hub.games.get(gid)
    pid = _player_id(game, token)
    use_live(game, pid)
    try:
        state = hub.state(gid, token)
    except GameError as exc:
        solara.Error(exc.message)
        return
    if state["role"] != "player":
        solara.Error("This page is for players; the facilitator uses the console.")
        return
    team = state["team"]
    solara.Title(f"{team}: Lanthanide wargame")
    header = (
        f"{team} · {state['name']} · turn {min(state['turn'] + 1, state['turns'])} of "
        f"{state['turns']}"
    )
    with solara.Column():
        solara.Text(header, classes=["wg-big", "wg-header"])
        # The page keeps one shape from the first turn to the end: an element added or removed
        # in the middle would shift every later one, and reacton would rebuild those (the
        # charts included) instead of updating them. So the status line is always there and
        # the debrief button comes last in its row.
        with solara.Row(style={"align-items": "center", "flex-wrap": "wrap"}):
            if state["status"] == "finished":
                Md("**The game is over.** Your facilitator will lead the debrief.", ("wg-status",))
                solara.Button(
                    "Open the debrief",
                    href=f"/debrief?game={gid}&token={quote(token)}",
                    target="_blank",
                )
            else:
                td = state["turn_dates"]
                left = state["deadline_in_seconds"]
                Md(
                    f"This turn: **{td[0]} to {td[1]}** ({state['turn_months']} months). "
                    + ("**Paused by the facilitator.** " if state["status"] == "paused" else "")
                    + (f"Time left: about {left:.0f} s." if left is not None else ""),
                    ("wg-status",),
                )
        Submissions(state["teams"])
        mine = state["teams"][team]
        with solara.Columns([5, 7]):
            with solara.Column():
                Levers(
                    gid,
                    token,
                    team,
                    state["turn"],
                    state["levers"],
                    state["me"],
                    state.get("moves") if mine["submitted"] else None,
                    mine.get("revision", 0),
                )
                Messages(state["messages"], gid, token, list(state["teams"]), team)
            with solara.Column():
                with solara.Card("The world"):
                    WorldSummary(state["world"])
                Intelligence(state["me"])
                TeamCharts(gid, team, state["turn"])
                News(state["news"])


@solara.component
def Levers(
    gid: str,
    token: str,
    team: str,
    turn: int,
    levers: dict,
    me: dict,
    submitted: dict | None,
    revision: int,
):
    """A team's levers with units and limits, its budget, and the Submit button.

    ``submitted`` is the team's moves in force this turn (None before it submits).
    """
    # The draft (levers changed but not yet submitted) belongs to one turn: a draft of an earlier
    # turn reads as empty, with no reset render that could race the student's typing. Updates
    # are functional and also land in a ref, so a click on Submit that arrives before the page
    # re-rendered still sends the latest values.
    draft_t, set_draft_t = solara.use_state((turn, {}))
    draft_ref = solara.use_ref(draft_t)
    draft = draft_t[1] if draft_t[0] == turn else {}
    err, set_err = solara.use_state("")

    def setters() -> dict:
        def set_lever(name: str, v: float) -> None:
            def update(d):
                new = (turn, {**(d[1] if d[0] == turn else {}), name: v})
                draft_ref.current = new
                return new

            set_draft_t(update)

        return {
            n: (lambda v, n=n: set_lever(n, v), lambda v, n=n: set_lever(n, 1.0 if v else 0.0))
            for n in levers
        }

    # the same callbacks while the turn lasts, so a lever box re-renders only if its value does
    on_lever = solara.use_memo(setters, [turn, tuple(levers)])

    def submit():
        k, moves = draft_ref.current
        hub = get_hub()
        live = hub.games[gid].turn if gid in hub.games else turn
        try:
            hub.moves(gid, token, {"moves": dict(moves) if k == live else {}})
            set_err("")
        except GameError as exc:
            set_err(exc.message)

    with solara.Card(f"Your levers ({team})") as card:
        Md(
            f"Budget: **{_money(me['budget_usd'])}** · stockpile "
            f"{sum(me['stockpile_t'].values()):,.0f} t · target "
            f"{me['stockpile_target_days']:.0f} days"
        )
        for name, lvr in levers.items():
            value = draft.get(name, lvr["value"])
            label = f"{lvr['label']} [{lvr['min']:g} to {lvr['max']:g} {lvr['unit']}]"
            if lvr["step"] == 1.0 and lvr["max"] == 1.0 and lvr["min"] == 0.0:
                solara.Checkbox(label=label, value=bool(value >= 0.5), on_value=on_lever[name][1])
            else:
                LeverBox(name, label, float(value), on_lever[name][0])
            solara.Text(f"{lvr['help']} Cost: {lvr['cost']}.", classes=["wg-muted"])
        solara.Button("Submit moves", on_click=submit, color="primary", classes=["wg-submit"])
        if err:
            solara.Error(err)
        if submitted is not None:
            what = "; ".join(
                f"{levers[n]['label'] if n in levers else n} {v:g}" for n, v in submitted.items()
            )
            solara.Text(
                f"Submitted (revision {revision or 1}): "
                f"{what or 'no change'}. You can revise until the turn closes.",
                classes=["wg-ok", "wg-submitted"],
            )
        else:
            solara.Text("Not submitted yet.", classes=["wg-wait"])
    return card


@solara.component
def TeamCharts(gid: str, team: str, turn: int):
    """The team's dashboard charts, built once per turn for all pages (re-rendered per turn).

    They are there, empty, before the first turn, so that each browser compiles them while the
    teams read their briefing and a new turn only adds rows.
    """
    game = get_hub().games.get(gid)
    with solara.Column() as col:
        if game is not None:
            # the right-hand column is about 700 px wide: two small multiples a row
            ExplorerView(game, ("prices",), "prices", wrap=2)
            if team != "China":
                ExplorerView(game, ("dependence", team), "dependence", country=team, wrap=2)
            ExplorerView(game, ("stocks", team), "stocks", country=team, option="ndpr", wrap=2)
            LineChart(
                game,
                ("lost", team),
                lambda frames: charts.series(frames, "lost_output_usd", country=team),
                f"{team}: output lost to shortages",
                "US$/month",
            )
    return col


@solara.component
def News(news: list[dict]):
    """The policy log as news, newest first."""
    with solara.Card("News") as card:
        Md(
            "\n".join(f"- {n['date']} · **{n['by']}**: {n['text']}" for n in reversed(news[-10:]))
            or "Nothing yet."
        )
    return card


@solara.component
def LeverBox(name: str, label: str, value: float, on_commit):
    """A lever's number box that keeps what the student types until it is committed.

    Solara's ``InputFloat`` (without continuous updates) learns the typed text only on Enter or
    blur, so any re-render before that (another team submits, a message arrives, a new turn
    shows) put the last committed value back in the box and the typed one was lost. Here the
    text is this component's state, kept in step with every keystroke, and parsed and passed to
    ``on_commit`` on Enter or blur. When ``value`` changes from outside (a new turn), the box
    shows it unless the text already says that number.
    """
    text, set_text = solara.use_state(f"{value:g}")
    text_ref = solara.use_ref(text)
    text_ref.current = text
    err, set_err = solara.use_state("")

    def parse(t: str) -> float | None:
        try:
            return float(str(t).strip().replace(",", "."))
        except ValueError:
            return None

    def follow_value():
        if parse(text_ref.current) != value:
            set_text(f"{value:g}")
            set_err("")

    solara.use_effect(follow_value, [value])

    def commit(t):
        v = parse(t if t is not None else "")
        if v is None:
            set_err("must be a number")
            return
        set_err("")
        on_commit(v)

    field = solara.v.TextField(
        v_model=text,
        on_v_model=set_text,
        label=label,
        error_messages=[err] if err else [],
        hide_details="auto",
        class_=f"wg-lever-{name}",
    )
    use_change(field, commit)
    return field


def _player_id(game, token: str) -> int | None:
    if game is None or not token:
        return None
    from viz.wargame.store import token_hash

    h = token_hash(token)
    return next((p.id for p in game.players.values() if p.token_hash == h), None)


@solara.component
def Intelligence(me: dict):
    """What the state knows privately about its supply."""
    intel = me.get("intelligence") or {}
    with solara.Card("Your intelligence (private)"):
        if not intel:
            solara.Text("Nothing yet: the first turn has not been played.")
            return
        fill = intel["fill"]
        Md(
            "Orders filled last month: "
            + ", ".join(
                f"{k.replace('_', ' ')} {v:.0%}" for k, v in fill.items() if "concentrate" not in k
            )
        )
        risk = intel["perceived_risk_of"]
        top = sorted(risk.items(), key=lambda kv: -kv[1])[:3]
        Md("Your buyers fear: " + ", ".join(f"{k} {v:.2f}" for k, v in top))
        imp = intel["import_share_from"]
        if imp:
            Md(
                "Imports from: "
                + ", ".join(f"{k} {v:.0%}" for k, v in sorted(imp.items(), key=lambda kv: -kv[1]))
            )
        Md(
            f"Pain (output lost over 3 months, share of RE-using output): {intel['pain']:.2%}; "
            f"lost last turn: {_money(me['lost_output_last_turn_usd'])}"
        )


# ----------------------------------------------------------------------------- facilitator


@solara.component
def Facilitator():
    """The facilitator's console."""
    solara.Style(CSS)
    q = _query()
    hub = get_hub()
    gid, token = q.get("game", ""), q.get("token", "")
    game = hub.games.get(gid)
    use_live(game)
    err, set_err = solara.use_state("")
    preset, set_preset = solara.use_state("mine_accident")
    country, set_country = solara.use_state("China")
    event_text, set_event_text = solara.use_state("")
    bcast, set_bcast = solara.use_state("")
    try:
        state = hub.state(gid, token)
    except GameError as exc:
        solara.Error(exc.message)
        return
    if state["role"] != "facilitator":
        solara.Error("This console needs the facilitator's link.")
        return
    solara.Title(f"Console {gid}: Lanthanide wargame")

    def act(fn):
        def run():
            try:
                fn()
                set_err("")
            except GameError as exc:
                set_err(exc.message)

        return run

    tq = quote(token)
    finished = state["status"] == "finished"
    with solara.Column():
        solara.Text(
            f"Game {gid} · {state['scenario']} · turn {state['turn']} of {state['turns']} played · "
            f"now {state['date']} · {state['status']}",
            classes=["wg-big", "wg-header"],
        )
        with solara.Row(style={"flex-wrap": "wrap"}):
            solara.Button(
                "Advance turn now",
                on_click=act(lambda: hub.advance(gid, token, {"when": "now"})),
                color="primary",
                disabled=finished,
                classes=["wg-advance"],
            )
            solara.Button(
                "Advance when all have submitted: " + ("on" if state["auto_advance"] else "off"),
                on_click=act(
                    lambda: hub.advance(
                        gid, token, {"when": "manual" if state["auto_advance"] else "all_submitted"}
                    )
                ),
                disabled=finished,
            )
            solara.Button(
                "Resume" if state["status"] == "paused" else "Pause",
                on_click=act(
                    lambda: hub.pause(gid, token, {"paused": state["status"] != "paused"})
                ),
                disabled=finished,
            )
            solara.Button(
                "Projector view", href=f"/projector?game={gid}&token={tq}", target="_blank"
            )
            solara.Button(
                "Debrief",
                href=f"/debrief?game={gid}&token={tq}",
                target="_blank",
                classes=["wg-debrief-link"],
            )
            solara.FileDownload(
                lambda: hub.export(gid, token), filename=f"wargame-{gid}.zip", label="Export (zip)"
            )
        if state["deadline_in_seconds"] is not None:
            solara.Text(f"Deadline: {state['deadline_in_seconds']:.0f} s left")
        if err:
            solara.Error(err)
        with solara.Columns([6, 6]):
            with solara.Column():
                with solara.Card("Teams and players"):
                    for t, e in state["teams"].items():
                        sub = "submitted" if e["submitted"] else "not submitted"
                        seat = (
                            f"{e['connected']} connected"
                            if e["players"]
                            else "empty seat (strategy plays)"
                        )
                        Md(f"**{t}**: {sub} (revision {e.get('revision', 0)}), {seat}")
                        mv = state["moves"].get(t)
                        if mv:
                            solara.Text(
                                ", ".join(f"{k}={v:g}" for k, v in mv.items()), classes=["wg-muted"]
                            )
                        for p in state["roster"]:
                            if p["team"] != t or p["kicked"]:
                                continue
                            with solara.Row():
                                solara.Text(
                                    f"· {p['name']} ({'online' if p['connected'] else 'away'})"
                                )
                                solara.Button(
                                    "kick",
                                    text=True,
                                    on_click=act(
                                        lambda pid=p["player_id"]: hub.kick(
                                            gid, token, {"player_id": pid}
                                        )
                                    ),
                                )
                with solara.Card("Join codes"):
                    with solara.Row(style={"flex-wrap": "wrap", "gap": "16px"}):
                        for t, code in state["join_codes"].items():
                            with solara.Column(gap="0px", align="center"):
                                solara.Text(f"{t}: {code}", classes=["wg-big", "wg-code"])
                                solara.HTML(
                                    tag="div", unsafe_innerHTML=_qr_svg(state["join_urls"][t], 3)
                                )
                with solara.Card("Inject an event (applies at the start of the next turn)"):
                    solara.Select(
                        "from the list",
                        value=preset,
                        values=list(INJECT_PRESETS),
                        on_value=set_preset,
                    )
                    solara.Text(
                        INJECT_PRESETS[preset]["label"].format(
                            country=country, coercer=state["coercer"], target=state["target"]
                        ),
                        classes=["wg-muted"],
                    )
                    solara.Select(
                        "country (where it applies)",
                        value=country,
                        values=list(COUNTRIES),
                        on_value=set_country,
                    )
                    solara.Button(
                        "Queue this inject",
                        on_click=act(
                            lambda: hub.inject(gid, token, {"preset": preset, "country": country})
                        ),
                        disabled=finished,
                        classes=["wg-inject"],
                    )
                    solara.InputTextArea(
                        'or a scenario event as JSON, e.g. {"type": "embargo", '
                        '"exporter": "China", '
                        '"target": "Korea"}',
                        value=event_text,
                        on_value=set_event_text,
                    )

                    def queue_event():
                        try:
                            ev = json.loads(event_text)
                        except ValueError:
                            raise GameError(400, "event: not valid JSON") from None
                        hub.inject(gid, token, {"event": ev})

                    solara.Button(
                        "Queue the written event", on_click=act(queue_event), disabled=finished
                    )
                    for i in state["injects_pending"]:
                        solara.Text(f"queued: {i['label']}")
                with solara.Card("Broadcast"):
                    solara.InputText(
                        "message to everyone",
                        value=bcast,
                        on_value=set_bcast,
                        continuous_update=True,
                    )

                    def send():
                        hub.message(gid, token, {"to": "all", "text": bcast})
                        set_bcast("")

                    solara.Button("Broadcast", on_click=act(send))
            with solara.Column():
                with solara.Card("The world"):
                    WorldSummary(state["world"])
                with solara.Card("Budgets and stockpiles (all states)"):
                    rows = "\n".join(
                        f"| {c} | {_money(b['budget_usd'])} | "
                        f"{sum(b['stockpile_t'].values()):,.0f} t | "
                        f"{_money(b['lost_output_last_turn_usd'])} |"
                        for c, b in state["countries"].items()
                    )
                    Md(
                        "| state | budget | stockpile | lost last turn |\n|---|---|---|---|\n"
                        + rows
                    )
                Messages(state["messages"], gid, token, list(state["teams"]), None)


# ----------------------------------------------------------------------------- projector


@solara.component
def Projector():
    """The world for the whole class, large; the join codes before the first turn."""
    solara.Style(CSS)
    q = _query()
    hub = get_hub()
    gid, token = q.get("game", ""), q.get("token", "")
    game = hub.games.get(gid)
    use_live(game)
    try:
        state = hub.state(gid, token)
    except GameError as exc:
        solara.Error(exc.message)
        return
    if state["role"] != "facilitator":
        solara.Error("The projector view needs the facilitator's link.")
        return
    solara.Title("Projector: Lanthanide wargame")
    with solara.Column():
        if state["status"] == "finished":
            solara.Text(f"Game over · {state['date']}", classes=["wg-huge"])
        else:
            td = state["turn_dates"]
            solara.Text(
                f"Turn {state['turn'] + 1} of {state['turns']} · {td[0]} to {td[1]}",
                classes=["wg-huge", "wg-header"],
            )
        Submissions(state["teams"])
        if state["turn"] == 0:
            with solara.Row(style={"flex-wrap": "wrap", "gap": "32px"}):
                for t, code in state["join_codes"].items():
                    with solara.Column(gap="0px", align="center"):
                        solara.Text(f"{t}", classes=["wg-big"])
                        solara.HTML(tag="div", unsafe_innerHTML=_qr_svg(state["join_urls"][t], 5))
                        solara.Text(code, classes=["wg-big"])
            solara.Text(f"or open {hub.public_url}/ and type the game id {gid} and your team code")
        WorldSummary(state["world"], big=True)
        frames = game.frames() if game else None
        if frames is not None:
            with solara.Columns([1, 1]):
                LineChart(
                    game,
                    ("proj-prices",),
                    lambda frames: charts.series(
                        frames, "price", by="good", segment="world", stage="oxide"
                    ),
                    "World oxide prices",
                    "US$/kg",
                    colours=charts.GOOD_COLOURS,
                    height=260,
                )
                LineChart(
                    game,
                    ("proj-share",),
                    lambda frames: charts.series(frames, "china_share", by="stage"),
                    "China's share of world output",
                    "share",
                    y_format=".0%",
                    height=260,
                )
        with solara.Column(gap="2px"):
            for n in reversed(state["news"][-6:]):
                solara.Text(f"{n['date']} · {n['by']}: {n['text']}", classes=["wg-big"])


# ----------------------------------------------------------------------------- debrief


@solara.component
def Debrief():
    """Replay month by month, every team's moves on the timeline, the counterfactual beside."""
    solara.Style(CSS)
    q = _query()
    hub = get_hub()
    gid, token = q.get("game", ""), q.get("token", "")
    game = hub.games.get(gid)
    use_live(game)
    month, set_month = solara.use_state(-1)
    playing, set_playing = solara.use_state(False)
    frames = game.frames() if game else None
    dates = sorted(frames[0]["date"].dt.strftime("%Y-%m").unique()) if frames is not None else []
    idx = len(dates) - 1 if month < 0 or month >= len(dates) else month

    def play(cancel):
        k = 0 if idx >= len(dates) - 1 else idx
        while playing and not cancel.is_set() and k < len(dates) - 1:
            k += 1
            set_month(k)
            time.sleep(0.6)
        if playing:
            set_playing(False)

    solara.use_thread(play, dependencies=[playing], intrusive_cancel=False)
    try:
        deb = hub.debrief(gid, token)
        state = hub.state(gid, token)
    except GameError as exc:
        solara.Error(exc.message)
        return
    solara.Title("Debrief: Lanthanide wargame")
    if frames is None:
        solara.Info("Nothing to replay yet: play a turn first.")
        return
    now = dates[idx]
    turns = deb["turns"]
    marks = _move_marks(turns)
    summ = deb["summary"] or {}
    with solara.Column():
        solara.Text(f"Debrief · game {gid} · {now}", classes=["wg-huge", "wg-header"])
        with solara.Row():
            solara.SliderInt("month", value=idx, min=0, max=len(dates) - 1, on_value=set_month)
            solara.Button(
                "Pause" if playing else "Play",
                on_click=lambda: set_playing(not playing),
                classes=["wg-play"],
            )
        verdict = summ.get("verdict")
        conc = summ.get("concession") or {}
        Md(
            f"### Verdict so far: **{verdict}** · concession: "
            + (f"obtained {conc.get('date')}" if conc.get("obtained") else "not obtained")
        )
        for line in summ.get("explanation") or []:
            Md(f"- {line}")
        both = ("scenario", "counterfactual")
        with solara.Columns([1, 1]):
            VegaLite(
                charts.line_spec(
                    charts.series(
                        frames, "price", by="good", runs=both, segment="world", stage="oxide"
                    ),
                    "World oxide prices: game (solid) vs no coercion (dashed)",
                    "US$/kg",
                    colours=charts.GOOD_COLOURS,
                    now=now,
                    marks=marks,
                )
            )
            VegaLite(
                charts.line_spec(
                    charts.series(frames, "china_share", runs=both, stage="concentrate"),
                    "China's share of world mining",
                    "share",
                    now=now,
                    marks=marks,
                    y_format=".0%",
                )
            )
        with solara.Columns([1, 1]):
            tgt = state["target"]
            VegaLite(
                charts.line_spec(
                    charts.series(frames, "import_share_from_china", runs=both, country=tgt),
                    f"{tgt}'s dependence on China (share of imports)",
                    "share",
                    now=now,
                    marks=marks,
                    y_format=".0%",
                )
            )
            VegaLite(
                charts.line_spec(
                    charts.series(frames, "lost_output_usd", by="country", runs=both),
                    "Output lost to shortages, by country: who paid",
                    "US$/month",
                    colours=charts.country_colours(),
                    now=now,
                    marks=marks,
                )
            )
        with solara.Columns([1, 1]):
            VegaLite(
                charts.line_spec(
                    charts.series(
                        frames,
                        "capacity_t_per_year",
                        runs=both,
                        stage=["concentrate", "oxide"],
                        country=[c for c in COUNTRIES if c != "China"],
                    ),
                    "Mining + separation capacity outside China",
                    "t/yr",
                    now=now,
                    marks=marks,
                )
            )
            VegaLite(
                charts.line_spec(
                    charts.series(frames, "revenue_usd", runs=both, country="China"),
                    "China's rare-earth revenue",
                    "US$/month",
                    now=now,
                    marks=marks,
                )
            )
        with solara.Card(
            "The explorer's views of the game (solid) and the counterfactual (dashed)"
        ):
            with solara.Row(style={"flex-wrap": "wrap"}):
                for view, opt in (("share", None), ("capacity", "oxide"), ("stocks", "ndpr")):
                    ExplorerView(game, ("debrief", view), view, runs=both, option=opt)
        with solara.Card("Every team's moves, turn by turn"):
            lines = []
            for rec in turns:
                lines.append("")
                cur = rec["date_from"] <= now <= rec["date_to"]
                head = f"**Turn {rec['turn'] + 1} ({rec['date_from']} to {rec['date_to']})**" + (
                    " ← now" if cur else ""
                )
                lines.append(head)
                lines.append("")
                for t, who in rec["played_by"].items():
                    mv = rec["moves"].get(t)
                    txt = ", ".join(f"{k}={v:g}" for k, v in mv.items()) if mv else ""
                    lines.append(f"- {t} ({who}): {txt or '-'}")
            Md("\n".join(lines))
        with solara.Card("Outcomes: game vs counterfactual"):
            o = summ.get("outcomes") or {}
            rows = "\n".join(
                f"| {outcome_label(k, state.get('target'))} | {_num(v.get('run'))} | "
                f"{_num(v.get('counterfactual'))} | "
                f"{_num(v.get('delta'))} |"
                for k, v in o.items()
            )
            Md("| outcome | game | counterfactual | difference |\n|---|---|---|---|\n" + rows)


def _num(x) -> str:
    if x is None:
        return "-"
    ax = abs(x)
    if ax >= 1e6:
        return f"{x / 1e6:,.1f} m"
    if ax >= 100:
        return f"{x:,.0f}"
    return f"{x:.3f}"


@solara.component
def Layout(children=[]):  # noqa: B006 (Solara's layout signature)
    """No navigation bar: players reach only the pages their links open."""
    solara.Style(CSS)
    with solara.Column(style={"padding": "12px"}) as main:
        solara.Column(children=children)
    return main


routes = [
    solara.Route(path="/", component=Home, label="Home", layout=Layout),
    solara.Route(path="join", component=Join, layout=Layout),
    solara.Route(path="play", component=Play, layout=Layout),
    solara.Route(path="facilitator", component=Facilitator, layout=Layout),
    solara.Route(path="projector", component=Projector, layout=Layout),
    solara.Route(path="debrief", component=Debrief, layout=Layout),
]
