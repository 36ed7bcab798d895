"""Load measurement for the classroom wargame (not a test): a class of 40 players plus 8 browsers.

Starts a real ``lanthanide wargame`` server on a free loopback port with a fresh database,
creates a game with all eight states played by teams, and then:

- 40 simulated players (threads, plain HTTP) join, poll ``GET /state`` about once a second and
  submit a move (``PUT /moves``) every turn, several players per team revising each other;
- 8 real Chromium pages (Playwright, Debian's chromium) join through the join page and show
  their team's page;
- the facilitator advances 8 turns through the API once every player has submitted.

It reports request errors, lost moves (a team's last acknowledged revision that is not the
move the turn used), request latencies, the time of each advance, and the time from the
advance until every browser page shows the new turn.

    python -m benchmarks.wargame_load [--players 40] [--pages 8] [--turns 8] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from viz.browser import CHROMIUM, CHROMIUM_ARGS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from wargame_server import Server  # noqa: E402

STATES = ["China", "Japan", "United States", "Australia", "EU", "Korea", "Myanmar", "Rest of World"]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.lat: dict[str, list[float]] = {"state": [], "moves": [], "join": []}
        self.errors: list[str] = []
        self.acked: dict[tuple[int, str], tuple[int, dict]] = {}  # (turn, team) -> (rev, moves)
        self.submitted: set[tuple[int, int]] = set()  # (turn, player)

    def time(self, kind: str, dt: float) -> None:
        with self.lock:
            self.lat[kind].append(dt)


def player(server, gid, code, team, idx, stats: Stats, stop: threading.Event, turns: int):
    t0 = time.perf_counter()
    st, j = server.call("POST", f"/api/games/{gid}/join", {"code": code, "name": f"bot{idx}"})
    stats.time("join", time.perf_counter() - t0)
    if st != 200:
        stats.errors.append(f"join {st} {j}")
        return
    tok = j["player_token"]
    done_turn = -1
    for _ in range(turns * 400):  # bounded
        if stop.is_set():
            return
        t0 = time.perf_counter()
        st, s = server.call("GET", f"/api/games/{gid}/state", token=tok)
        stats.time("state", time.perf_counter() - t0)
        if st != 200:
            stats.errors.append(f"state {st} {s}")
            time.sleep(1.0)
            continue
        if s["status"] == "finished":
            return
        turn = s["turn"]
        if turn != done_turn:
            lo = s["levers"]["stockpile_target_days"]["min"]
            days = float(min(lo + 15 * ((idx + turn) % 10), 365))
            mv = {"stockpile_target_days": days, "permit_months": float(idx % 6)}
            mv["permit_months"] = min(mv["permit_months"], s["levers"]["permit_months"]["max"])
            t0 = time.perf_counter()
            st, r = server.call("PUT", f"/api/games/{gid}/moves", {"moves": mv}, tok)
            stats.time("moves", time.perf_counter() - t0)
            if st == 200 and r["turn"] == turn:
                with stats.lock:
                    key = (turn, team)
                    if key not in stats.acked or stats.acked[key][0] < r["revision"]:
                        stats.acked[key] = (r["revision"], r["moves"])
                    stats.submitted.add((turn, idx))
                done_turn = turn
            elif st == 409:
                pass  # the turn closed between the poll and the move: poll again
            else:
                stats.errors.append(f"moves {st} {r}")
        time.sleep(1.0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--players", type=int, default=40)
    ap.add_argument("--pages", type=int, default=8)
    ap.add_argument("--turns", type=int, default=8)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="wargame-load-"))
    server = Server(tmp / "load.db").start()
    stats = Stats()
    stop = threading.Event()
    report: dict = {"players": args.players, "pages": args.pages, "turns": args.turns}
    try:
        st, g = server.call(
            "POST",
            "/api/games",
            {
                "scenario": "taiwan-crisis",
                "human_teams": STATES,
                "turn_months": 3,
                "turns": args.turns,
                "start": "2025-10",
            },
        )
        gid, fac, codes = g["game_id"], g["facilitator_token"], g["join_codes"]
        threads = []
        for i in range(args.players):
            team = STATES[i % len(STATES)]
            th = threading.Thread(
                target=player,
                args=(server, gid, codes[team], team, i, stats, stop, args.turns),
                daemon=True,
            )
            th.start()
            threads.append(th)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            pages = []
            t0 = time.perf_counter()
            for k in range(args.pages):
                team = STATES[k % len(STATES)]
                page = browser.new_page(viewport={"width": 1200, "height": 800})
                page.goto(f"{server.url}/join?game={gid}&code={codes[team]}")
                page.get_by_label("your name").fill(f"page{k}")
                page.locator(".wg-join").click()
                page.wait_for_selector("text=turn 1 of", timeout=120000)
                pages.append((team, page))
            report["pages_joined_seconds"] = round(time.perf_counter() - t0, 2)
            advances, shown = [], []
            for turn in range(args.turns):
                deadline = time.time() + 60
                while time.time() < deadline:
                    with stats.lock:
                        n = sum(1 for t, _ in stats.submitted if t == turn)
                    if n >= args.players:
                        break
                    time.sleep(0.2)
                t_adv = time.perf_counter()
                st, r = server.call("POST", f"/api/games/{gid}/advance", {"when": "now"}, fac)
                t_done = time.perf_counter()
                if st != 200:
                    stats.errors.append(f"advance {st} {r}")
                    break
                advances.append(t_done - t_adv)
                label = f"turn {turn + 2} of" if turn + 1 < args.turns else "The game is over"
                worst = 0.0
                for _team, page in pages:
                    page.wait_for_selector(f"text={label}", timeout=60000)
                    worst = time.perf_counter() - t_done
                shown.append(worst)
                print(
                    f"turn {turn + 1}: advance {advances[-1] * 1000:.0f} ms; all {len(pages)} "
                    f"pages show the new turn {worst:.2f} s after it",
                    flush=True,
                )
            browser.close()
        stop.set()
        for th in threads:
            th.join(timeout=10)
        st, log = server.call("GET", f"/api/games/{gid}/log", token=fac)
        lost = 0
        for rec in log["turns"]:
            for team in STATES:
                got = stats.acked.get((rec["turn"], team))
                if got is not None and rec["moves"].get(team) != got[1]:
                    lost += 1

        def q(xs, f):
            return round(statistics.quantiles(xs, n=20)[f] * 1000, 1) if len(xs) > 20 else None

        report |= {
            "errors": len(stats.errors),
            "error_samples": stats.errors[:5],
            "lost_moves": lost,
            "turn_records": len(log["turns"]),
            "acknowledged_team_turns": len(stats.acked),
            "requests": {k: len(v) for k, v in stats.lat.items()},
            "state_ms_median": q(stats.lat["state"], 9),
            "state_ms_p95": q(stats.lat["state"], 18),
            "moves_ms_median": q(stats.lat["moves"], 9),
            "moves_ms_p95": q(stats.lat["moves"], 18),
            "advance_ms": [round(a * 1000) for a in advances],
            "pages_show_new_turn_s": [round(s, 2) for s in shown],
            "pages_show_new_turn_s_max": round(max(shown), 2) if shown else None,
        }
        print(json.dumps(report, indent=2))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    finally:
        stop.set()
        server.stop()
    return 0 if not stats.errors else 1


if __name__ == "__main__":
    sys.exit(main())
