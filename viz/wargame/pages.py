"""The wargame's Solara pages: home, join, player, facilitator console, projector, debrief.

The pages hold no game logic: every read and action goes through the process's
:class:`viz.wargame.hub.Hub` with the page's token, the same calls the JSON API makes. One game
object per room is shared by all pages; each page waits on the game's change signal in a
thread and re-renders when the game changes (``solara.reactive`` is per page, so it cannot carry
shared state).
"""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, quote

import pandas as pd
import segno
import solara
import solara.widgets

from abm.constants import COUNTRIES
from abm.scenario import builtin_names
from viz import charts as explorer_charts
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


def VegaLite(spec: dict):
    """A Vega-Lite chart."""
    return solara.widgets.VegaLite.element(spec=spec)


def ExplorerView(game, key: tuple, view: str, runs=("scenario",), country=None, option=None):
    """One of the explorer's views (``viz.charts.chart``), from a state's point of view.

    ``runs`` picks the scenario and/or the counterfactual; ``country`` keeps only that state's
    rows of country-level variables (prices and shares stay world-wide).
    """

    def make():
        frames = game.frames()
        parts = [
            f for f, r in zip(frames, ("scenario", "counterfactual"), strict=True) if r in runs
        ]
        ts = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        if country is not None:
            ts = ts[ts["country"].isna() | (ts["country"] == country)]
        return explorer_charts.chart(view, ts, option)

    with solara.Column(style={"overflow-x": "auto", "max-width": "100%"}) as box:
        VegaLite(game.cached(("explorer", *key), make))
    return box


def Chart(game, key: tuple, make):
    """A chart whose spec is built once per turn for all pages (``make()`` returns the spec)."""
    return VegaLite(game.cached(key, make))


# ----------------------------------------------------------------------------- shared parts


@solara.component
def WorldSummary(state: dict, big: bool = False):
    """Public numbers: prices, China's shares, disputes and measures in force."""
    w = state["world"]
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
        solara.Markdown(
            f"**Dispute** {d['coercer']} vs {d['target']}: *{d['demand'] or d['id']}* "
            f"(since {d['since']}, {status})"
        )
    if w["measures"]:
        rows = "\n".join(
            f"| {m['type']} | {m['by']} | {m['detail']} | {m['since']} |" for m in w["measures"]
        )
        solara.Markdown("| measure | by | what | since |\n|---|---|---|---|\n" + rows)


@solara.component
def Submissions(state: dict):
    """Which teams have submitted this turn."""
    parts = []
    for t, e in state["teams"].items():
        mark = "submitted" if e["submitted"] else ("waiting" if e["players"] else "empty seat")
        parts.append(f"**{t}**: {mark}")
    solara.Markdown(" &nbsp; · &nbsp; ".join(parts))


@solara.component
def Messages(state: dict, send, teams: list[str], me: str | None):
    """The message channel (diplomacy with other teams and the facilitator)."""
    to, set_to = solara.use_state("all")
    text, set_text = solara.use_state("")
    err, set_err = solara.use_state("")
    with solara.Card("Messages"):
        for m in state["messages"][-12:]:
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
        solara.Markdown(f"You are joining **{team}** in game `{gid}`.")
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
    """A team's page: its state's dashboard, levers, budget, messages."""
    solara.Style(CSS)
    q = _query()
    hub = get_hub()
    gid, token = q.get("game", ""), q.get("token", "")
    game = hub.games.get(gid)
    pid = _player_id(game, token)
    use_live(game, pid)
    draft, set_draft = solara.use_state({})
    solara.use_effect(lambda: set_draft({}), [game.turn if game else None])  # a new turn
    err, set_err = solara.use_state("")
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
    me = state["me"]
    header = (
        f"{team} · {state['name']} · turn {min(state['turn'] + 1, state['turns'])} of "
        f"{state['turns']}"
    )
    with solara.Column():
        solara.Text(header, classes=["wg-big", "wg-header"])
        if state["status"] == "finished":
            solara.Success("The game is over. Your facilitator will lead the debrief.")
            solara.Button(
                "Open the debrief",
                href=f"/debrief?game={gid}&token={quote(token)}",
                target="_blank",
            )
        else:
            td = state["turn_dates"]
            solara.Markdown(
                f"This turn: **{td[0]} to {td[1]}** ({state['turn_months']} months). "
                + ("**Paused by the facilitator.** " if state["status"] == "paused" else "")
                + (
                    f"Time left: about {state['deadline_in_seconds']:.0f} s."
                    if state["deadline_in_seconds"] is not None
                    else ""
                )
            )
        Submissions(state)
        with solara.Columns([5, 7]):
            with solara.Column():
                with solara.Card(f"Your levers ({team})"):
                    solara.Markdown(
                        f"Budget: **{_money(me['budget_usd'])}** · stockpile "
                        f"{sum(me['stockpile_t'].values()):,.0f} t · target "
                        f"{me['stockpile_target_days']:.0f} days"
                    )
                    levers = state["levers"]
                    for name, lvr in levers.items():
                        value = draft.get(name, lvr["value"])
                        label = f"{lvr['label']} [{lvr['min']:g} to {lvr['max']:g} {lvr['unit']}]"
                        if lvr["step"] == 1.0 and lvr["max"] == 1.0 and lvr["min"] == 0.0:
                            solara.Checkbox(
                                label=label,
                                value=bool(value >= 0.5),
                                on_value=lambda v, n=name: set_draft(
                                    {**draft, n: 1.0 if v else 0.0}
                                ),
                            )
                        else:
                            solara.InputFloat(
                                label,
                                value=float(value),
                                on_value=lambda v, n=name: set_draft({**draft, n: v}),
                                continuous_update=False,
                                classes=[f"wg-lever-{name}"],
                            )
                        solara.Text(f"{lvr['help']} Cost: {lvr['cost']}.", classes=["wg-muted"])

                    def submit():
                        try:
                            hub.moves(gid, token, {"moves": dict(draft)})
                            set_err("")
                        except GameError as exc:
                            set_err(exc.message)

                    solara.Button(
                        "Submit moves", on_click=submit, color="primary", classes=["wg-submit"]
                    )
                    if err:
                        solara.Error(err)
                    mine = state["teams"][team]
                    if mine["submitted"]:
                        solara.Text(
                            f"Submitted (revision {mine.get('revision', 1)}); you can revise until "
                            "the turn closes.",
                            classes=["wg-ok", "wg-submitted"],
                        )
                    else:
                        solara.Text("Not submitted yet.", classes=["wg-wait"])
                Messages(
                    state,
                    lambda to, text: hub.message(gid, token, {"to": to, "text": text}),
                    list(state["teams"]),
                    team,
                )
            with solara.Column():
                with solara.Card("The world"):
                    WorldSummary(state)
                Intelligence(me)
                frames = game.frames() if game else None
                if frames is not None:
                    ExplorerView(game, ("prices",), "prices")
                    if team != "China":
                        ExplorerView(game, ("dependence", team), "dependence", country=team)
                    ExplorerView(game, ("stocks", team), "stocks", country=team, option="ndpr")
                    Chart(
                        game,
                        ("lost", team),
                        lambda: charts.line_spec(
                            charts.series(game.frames(), "lost_output_usd", country=team),
                            f"{team}: output lost to shortages",
                            "US$/month",
                        ),
                    )
                with solara.Card("News"):
                    solara.Markdown(
                        "\n".join(
                            f"- {n['date']} · **{n['by']}**: {n['text']}"
                            for n in reversed(state["news"][-10:])
                        )
                        or "Nothing yet."
                    )


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
        solara.Markdown(
            "Orders filled last month: "
            + ", ".join(
                f"{k.replace('_', ' ')} {v:.0%}" for k, v in fill.items() if "concentrate" not in k
            )
        )
        risk = intel["perceived_risk_of"]
        top = sorted(risk.items(), key=lambda kv: -kv[1])[:3]
        solara.Markdown("Your buyers fear: " + ", ".join(f"{k} {v:.2f}" for k, v in top))
        imp = intel["import_share_from"]
        if imp:
            solara.Markdown(
                "Imports from: "
                + ", ".join(f"{k} {v:.0%}" for k, v in sorted(imp.items(), key=lambda kv: -kv[1]))
            )
        solara.Markdown(
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
                        solara.Markdown(f"**{t}**: {sub} (revision {e.get('revision', 0)}), {seat}")
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
                    WorldSummary(state)
                with solara.Card("Budgets and stockpiles (all states)"):
                    rows = "\n".join(
                        f"| {c} | {_money(b['budget_usd'])} | "
                        f"{sum(b['stockpile_t'].values()):,.0f} t | "
                        f"{_money(b['lost_output_last_turn_usd'])} |"
                        for c, b in state["countries"].items()
                    )
                    solara.Markdown(
                        "| state | budget | stockpile | lost last turn |\n|---|---|---|---|\n"
                        + rows
                    )
                Messages(
                    state,
                    lambda to, text: hub.message(gid, token, {"to": to, "text": text}),
                    list(state["teams"]),
                    None,
                )


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
        Submissions(state)
        if state["turn"] == 0:
            with solara.Row(style={"flex-wrap": "wrap", "gap": "32px"}):
                for t, code in state["join_codes"].items():
                    with solara.Column(gap="0px", align="center"):
                        solara.Text(f"{t}", classes=["wg-big"])
                        solara.HTML(tag="div", unsafe_innerHTML=_qr_svg(state["join_urls"][t], 5))
                        solara.Text(code, classes=["wg-big"])
            solara.Text(f"or open {hub.public_url}/ and type the game id {gid} and your team code")
        WorldSummary(state, big=True)
        frames = game.frames() if game else None
        if frames is not None:
            with solara.Columns([1, 1]):
                Chart(
                    game,
                    ("proj-prices",),
                    lambda: charts.line_spec(
                        charts.series(
                            game.frames(), "price", by="good", segment="world", stage="oxide"
                        ),
                        "World oxide prices",
                        "US$/kg",
                        colours=charts.GOOD_COLOURS,
                        height=260,
                    ),
                )
                Chart(
                    game,
                    ("proj-share",),
                    lambda: charts.line_spec(
                        charts.series(game.frames(), "china_share", by="stage"),
                        "China's share of world output",
                        "share",
                        y_format=".0%",
                        height=260,
                    ),
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
        solara.Markdown(
            f"### Verdict so far: **{verdict}** · concession: "
            + (f"obtained {conc.get('date')}" if conc.get("obtained") else "not obtained")
        )
        for line in summ.get("explanation") or []:
            solara.Markdown(f"- {line}")
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
            solara.Markdown("\n".join(lines))
        with solara.Card("Outcomes: game vs counterfactual"):
            o = summ.get("outcomes") or {}
            rows = "\n".join(
                f"| {k} | {_num(v.get('run'))} | {_num(v.get('counterfactual'))} | "
                f"{_num(v.get('delta'))} |"
                for k, v in o.items()
            )
            solara.Markdown(
                "| outcome | game | counterfactual | difference |\n|---|---|---|---|\n" + rows
            )


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
