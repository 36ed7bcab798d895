"""The classroom wargame on a real server process: API, restart, missing teams, browser."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from wargame_server import Server

from viz.browser import CHROMIUM, CHROMIUM_ARGS

GAME = {
    "scenario": "taiwan-crisis",
    "human_teams": ["China", "Japan", "United States"],
    "turn_months": 3,
    "turns": 6,
    "start": "2025-10",
}


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "wargame.db").start()
    yield s
    s.stop()


def _setup(server, game=GAME):
    st, g = server.call("POST", "/api/games", game)
    assert st == 201, g
    tokens = {}
    for team, code in g["join_codes"].items():
        st, j = server.call(
            "POST", f"/api/games/{g['game_id']}/join", {"code": code, "name": f"p-{team}"}
        )
        assert st == 200 and j["team"] == team
        tokens[team] = j["player_token"]
    return g["game_id"], g["facilitator_token"], tokens


def test_api_end_to_end(server):
    gid, fac, tok = _setup(server)
    base = f"/api/games/{gid}"
    assert len(set(tok.values()) | {fac}) == 4 and all(len(t) >= 32 for t in tok.values())

    # a player sees its own levers and private block, not another team's
    st, japan = server.call("GET", f"{base}/state", token=tok["Japan"])
    assert (
        st == 200 and japan["team"] == "Japan" and japan["turn"] == 0 and japan["date"] == "2025-10"
    )
    lev = japan["levers"]["stockpile_target_days"]
    assert {"value", "min", "max", "unit"} <= set(lev)
    assert "budget_usd" in japan["me"] and "budget_usd" not in japan["teams"]["China"]
    assert "licensing_japan_approval" not in japan["levers"]
    st, china = server.call("GET", f"{base}/state", token=tok["China"])
    assert "licensing_japan_approval" in china["levers"]

    # a player cannot act for another team: China's lever is unknown to Japan's token
    st, err = server.call(
        "PUT", f"{base}/moves", {"moves": {"licensing_japan_approval": 0.1}}, tok["Japan"]
    )
    assert st == 400 and "licensing_japan_approval" in err["error"]
    # a bad move names the lever and its range and changes nothing
    st, err = server.call(
        "PUT", f"{base}/moves", {"moves": {"stockpile_target_days": 9999}}, tok["Japan"]
    )
    assert st == 400
    assert "stockpile_target_days" in err["error"] and "60 to 365" in err["error"]
    st, err = server.call(
        "PUT", f"{base}/moves", {"moves": {"finance_mines_musd": "lots"}}, tok["Japan"]
    )
    assert st == 400 and "finance_mines_musd" in err["error"]
    st, japan = server.call("GET", f"{base}/state", token=tok["Japan"])
    assert japan["moves"] is None and not japan["teams"]["Japan"]["submitted"]

    # facilitator-only actions: 401 without a token, 403 with a player's, bad token 401
    assert server.call("POST", f"{base}/advance", {})[0] == 401
    assert server.call("POST", f"{base}/advance", {}, tok["China"])[0] == 403
    assert server.call("GET", f"{base}/log", token=tok["Japan"])[0] == 403
    assert server.call("GET", f"{base}/export", token=tok["Japan"])[0] == 403
    assert server.call("GET", f"{base}/state", token="not-a-token")[0] == 401
    assert server.call("GET", "/api/games/nope/state", token=fac)[0] == 404

    # moves, a revision, then the turn
    assert (
        server.call(
            "PUT", f"{base}/moves", {"moves": {"licensing_japan_approval": 0.3}}, tok["China"]
        )[0]
        == 200
    )
    st, rev = server.call(
        "PUT", f"{base}/moves", {"moves": {"licensing_japan_approval": 0.2}}, tok["China"]
    )
    assert st == 200 and rev["revision"] == 2
    server.call(
        "PUT",
        f"{base}/moves",
        {"moves": {"stockpile_target_days": 150, "finance_mines_musd": 300}},
        tok["Japan"],
    )
    st, seen = server.call("GET", f"{base}/state", token=tok["United States"])
    assert seen["teams"]["China"]["submitted"] and seen["teams"]["Japan"]["submitted"]
    assert not seen["teams"]["United States"]["submitted"]
    st, adv = server.call("POST", f"{base}/advance", {"when": "now"}, fac)
    assert st == 200 and adv["turn"] == 1 and adv["date"] == "2026-01"
    assert adv["record"]["played_by"] == {
        "China": "team",
        "Japan": "team",
        "United States": "strategy (rule)",
    }

    st, china = server.call("GET", f"{base}/state", token=tok["China"])
    assert china["turn"] == 1 and china["levers"]["licensing_japan_approval"][
        "value"
    ] == pytest.approx(0.2)
    assert any(
        m["id"] == "wargame-china-licensing_japan_approval" for m in china["world"]["measures"]
    )
    st, japan = server.call("GET", f"{base}/state", token=tok["Japan"])
    assert japan["levers"]["stockpile_target_days"]["value"] == 150
    assert japan["levers"]["finance_mines_musd"]["value"] == 0  # per-turn spending resets

    # messages: a private note to Japan is not seen by the US
    server.call("POST", f"{base}/messages", {"to": "Japan", "text": "talk?"}, tok["China"])
    assert any(
        m["text"] == "talk?"
        for m in server.call("GET", f"{base}/state", token=tok["Japan"])[1]["messages"]
    )
    assert not any(
        m["text"] == "talk?"
        for m in server.call("GET", f"{base}/state", token=tok["United States"])[1]["messages"]
    )

    # an inject from the list and a bad written one
    assert (
        server.call("POST", f"{base}/inject", {"preset": "mine_accident", "country": "China"}, fac)[
            0
        ]
        == 200
    )
    st, err = server.call(
        "POST", f"{base}/inject", {"event": {"type": "embargo", "exporter": "Atlantis"}}, fac
    )
    assert st == 400 and "exporter" in err["error"]
    server.call("POST", f"{base}/advance", {}, fac)

    st, log = server.call("GET", f"{base}/log", token=fac)
    assert st == 200 and len(log["turns"]) == 2
    assert [r["revision"] for r in log["move_revisions"] if r["team"] == "China"] == [1, 2]
    assert any(
        "capacity_shock" in e["text"] and e["by"] == "facilitator"
        for e in log["events"]["scenario"]
    )

    st, blob = server.call("GET", f"{base}/export", token=fac, raw=True)
    assert st == 200
    z = zipfile.ZipFile(io.BytesIO(blob))
    assert {
        "timeseries.parquet",
        "moves.parquet",
        "messages.parquet",
        "events.parquet",
        "summary.json",
        "game.json",
    } <= set(z.namelist())
    ts = pd.read_parquet(io.BytesIO(z.read("timeseries.parquet")))
    assert set(ts["run"].astype(str)) == {"scenario", "counterfactual"}
    assert ts["date"].max() == pd.Timestamp("2026-03-01")
    moves = pd.read_parquet(io.BytesIO(z.read("moves.parquet")))
    assert len(moves[(moves["team"] == "China")]) == 2


def test_price_floor_lever_costs_the_state_its_top_up(server):
    """The US can put an NdPr floor under MP Materials; below it, the state pays the gap."""
    spent = {}
    for floor in (None, 150.0):
        gid, fac, tok = _setup(server, {**GAME, "human_teams": ["United States"]})
        base = f"/api/games/{gid}"
        st, us = server.call("GET", f"{base}/state", token=tok["United States"])
        lev = us["levers"]["price_floor_mp_materials_separation"]
        assert lev["value"] == 0.0 and lev["min"] == 0.0 and lev["max"] == 200.0
        assert "US$/kg" in lev["unit"]
        st, err = server.call(
            "PUT",
            f"{base}/moves",
            {"moves": {"price_floor_mp_materials_separation": 500}},
            tok["United States"],
        )
        assert st == 400 and "price_floor_mp_materials_separation" in err["error"]
        assert "0 to 200" in err["error"]
        if floor is not None:
            st, _ = server.call(
                "PUT",
                f"{base}/moves",
                {"moves": {"price_floor_mp_materials_separation": floor}},
                tok["United States"],
            )
            assert st == 200
        assert server.call("POST", f"{base}/advance", {}, fac)[0] == 200
        st, us = server.call("GET", f"{base}/state", token=tok["United States"])
        assert us["levers"]["price_floor_mp_materials_separation"]["value"] == (floor or 0.0)
        spent[floor] = us["me"]["spent_usd"]
    # same seed and moves otherwise: the floor's top-ups are the difference
    assert spent[150.0] > spent[None]


def test_missing_team_is_played_by_its_strategy(server):
    gid, fac, tok = _setup(server, {**GAME, "human_teams": ["China", "Japan"]})
    base = f"/api/games/{gid}"
    for _ in range(2):  # China never submits; the dispute opens in 2026-01 (turn 2)
        server.call("PUT", f"{base}/moves", {"moves": {"stockpile_target_days": 90}}, tok["Japan"])
        st, adv = server.call("POST", f"{base}/advance", {}, fac)
        assert adv["record"]["played_by"]["China"] == "strategy (rule)"
        assert adv["record"]["played_by"]["Japan"] == "team"
    st, log = server.call("GET", f"{base}/log", token=fac)
    china = [e for e in log["events"]["scenario"] if e["by"] == "China"]
    # the rule strategy restricted Japan in the dispute, as it would with no team at all
    assert any("licensing rule-China-taiwan-dispute" in e["text"] for e in china)
    # and no coercion in the counterfactual
    assert not any(
        "licensing" in e["text"] for e in log["events"]["counterfactual"] if e["by"] == "China"
    )


def _stable(state):
    drop = {"version", "deadline_in_seconds"}
    out = {k: v for k, v in state.items() if k not in drop}
    out["teams"] = {
        t: {k: v for k, v in e.items() if k != "connected"} for t, e in state["teams"].items()
    }
    out["roster"] = [
        {k: v for k, v in p.items() if k not in ("connected", "last_seen_seconds")}
        for p in state["roster"]
    ]
    return out


def test_restart_mid_game_resumes(tmp_path):
    server = Server(tmp_path / "wargame.db").start()
    try:
        gid, fac, tok = _setup(server)
        base = f"/api/games/{gid}"
        plays = [
            {
                "China": {"licensing_japan_approval": 0.4},
                "Japan": {"stockpile_target_days": 120, "substitution_rd_musd": 50},
            },
            {"China": {"embargo_japan": 1}, "United States": {"finance_refineries_musd": 400}},
        ]
        for k, moves in enumerate(plays):
            for team, mv in moves.items():
                assert server.call("PUT", f"{base}/moves", {"moves": mv}, tok[team])[0] == 200
            if k == 1:
                server.call("POST", f"{base}/inject", {"preset": "ev_boom"}, fac)
            server.call("POST", f"{base}/advance", {}, fac)
        # the open turn: one move and a message, not yet advanced
        server.call("PUT", f"{base}/moves", {"moves": {"permit_months": 12}}, tok["Japan"])
        server.call(
            "POST", f"{base}/messages", {"to": "all", "text": "hold the line"}, tok["Japan"]
        )
        server.call(
            "POST", f"{base}/inject", {"preset": "new_deposit", "country": "Australia"}, fac
        )
        before = server.call("GET", f"{base}/state", token=fac)[1]
        server.kill()  # no clean shutdown
        server.start()
        after = server.call("GET", f"{base}/state", token=fac)[1]
        assert _stable(after) == _stable(before)
        assert after["turn"] == 2 and after["moves"]["Japan"] == {"permit_months": 12.0}
        # players' tokens survive, and the game goes on from there
        assert server.call("GET", f"{base}/state", token=tok["China"])[0] == 200
        st, adv = server.call("POST", f"{base}/advance", {}, fac)
        assert st == 200 and adv["turn"] == 3 and adv["record"]["played_by"]["Japan"] == "team"
    finally:
        server.stop()


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (.ci/run installs it)"
)
def test_browser_two_players_and_facilitator_play_two_turns(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    st, g = server.call("POST", "/api/games", {**GAME, "human_teams": ["China", "Japan"]})
    gid, fac = g["game_id"], g["facilitator_token"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            console = browser.new_page(viewport={"width": 1300, "height": 900})
            console.goto(f"{server.url}/facilitator?game={gid}&token={fac}")
            console.wait_for_selector("text=turn 0 of 6 played", timeout=60000)
            players = {}
            for team in ("China", "Japan"):
                page = browser.new_page(viewport={"width": 1300, "height": 900})
                page.goto(f"{server.url}/join?game={gid}&code={g['join_codes'][team]}")
                page.get_by_label("your name").fill(f"student {team}")
                page.locator(".wg-join").click()
                page.wait_for_selector(f"text={team} · student {team} · turn 1 of 6", timeout=60000)
                players[team] = page
            levers = {
                1: {
                    "China": ("licensing_japan_approval", "0.5"),
                    "Japan": ("stockpile_target_days", "90"),
                },
                2: {
                    "China": ("licensing_japan_approval", "0.25"),
                    "Japan": ("stockpile_target_days", "120"),
                },
            }
            shown = {
                "licensing_japan_approval": "Export licences for Japan: share approved",
                "stockpile_target_days": "State stockpile target",
            }
            for turn in (1, 2):
                # China types but does not press Enter; Japan then submits, which re-renders
                # China's page: the typed value must survive that and be what China submits
                china, japan = players["China"], players["Japan"]
                name, value = levers[turn]["China"]
                china.locator(f".wg-lever-{name} input").fill(value)
                jname, jvalue = levers[turn]["Japan"]
                jbox = japan.locator(f".wg-lever-{jname} input")
                jbox.fill(jvalue)
                jbox.press("Enter")
                japan.locator(".wg-submit").click()
                china.wait_for_selector("text=Japan: submitted", timeout=30000)
                china.locator(".wg-submit").click()
                for team, page in players.items():
                    name, value = levers[turn][team]
                    page.locator(".wg-submitted", has_text=f"{shown[name]} {value}").wait_for(
                        timeout=30000
                    )
                    page.screenshot(path=str(tmp_path / f"turn{turn}-{team}.png"), full_page=True)
                console.wait_for_selector("text=Japan: submitted", timeout=30000)
                console.screenshot(path=str(tmp_path / f"turn{turn}-console.png"), full_page=True)
                console.locator(".wg-advance").click()
                for team, page in players.items():
                    page.wait_for_selector(
                        f"text={team} · student {team} · turn {turn + 1} of 6", timeout=30000
                    )
            st, state = server.call("GET", f"/api/games/{gid}/state", token=fac)
            assert state["turn"] == 2
            st, log = server.call("GET", f"/api/games/{gid}/log", token=fac)
            assert [r["played_by"] for r in log["turns"]] == [
                {"China": "team", "Japan": "team"}
            ] * 2
            assert log["turns"][0]["moves"]["China"]["licensing_japan_approval"] == 0.5
            assert log["turns"][1]["moves"]["Japan"] == {"stockpile_target_days": 120}
            assert log["turns"][1]["moves"]["China"] == {"licensing_japan_approval": 0.25}
            debrief = browser.new_page(viewport={"width": 1300, "height": 900})
            debrief.goto(f"{server.url}/debrief?game={gid}&token={fac}")
            debrief.wait_for_selector("text=Verdict so far", timeout=60000)
            debrief.wait_for_timeout(1500)
            debrief.screenshot(path=str(tmp_path / "debrief.png"), full_page=True)
        finally:
            browser.close()
