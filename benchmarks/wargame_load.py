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
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from viz.browser import CHROMIUM, CHROMIUM_ARGS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from wargame_server import Server  # noqa: E402

WATCH_JS = """
window.__wg = {want: null, month: null, seen: {}, charts: {}, tasks: []};
window.__wg.expect = ([w, month]) => { window.__wg.want = w; window.__wg.month = month; };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    window.__wg.tasks.push([performance.timeOrigin + e.startTime, e.duration]);
  }
}).observe({type: "longtask", buffered: true});
window.__wg.busy = (t0, t1) => window.__wg.tasks
  .filter(([s, d]) => s >= t0 && s <= t1).reduce((a, [s, d]) => a + d, 0);
new MutationObserver(() => {
  const wg = window.__wg;
  const now = Date.now();
  const w = wg.want;
  if (w && !(w in wg.seen) && document.body && document.body.textContent.includes(w)) {
    const rec = {dom: now, frame: null};
    wg.seen[w] = rec;
    requestAnimationFrame(() => { rec.frame = Date.now(); });
  }
  const m = wg.month;
  if (m && !(m in wg.charts)) {
    const charts = [...document.querySelectorAll(".lanthanide-chart")];
    if (charts.length && charts.every((c) => (c.dataset.stamp || "").startsWith(m))) {
      wg.charts[m] = now;
    }
  }
}).observe(document, {
  subtree: true, childList: true, characterData: true, attributes: true,
  attributeFilter: ["data-stamp"],
});
"""
"""Runs in every page before Solara's scripts: notes (epoch ms, the clock the server and this
script read) when the expected label first appears in the page and the next frame is drawn
with it, and when a chart last changed."""

STAMPED = "() => document.querySelectorAll('.lanthanide-chart').length > 0"
"""Whether the page's charts say what month they show (``data-stamp``)."""

STATES = ["China", "Japan", "United States", "Australia", "EU", "Korea", "Myanmar", "Rest of World"]


def _proc_cpu() -> dict[int, tuple[int, str, float]]:
    """Every process: pid -> (parent pid, name, CPU seconds so far), from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            raw = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        f = raw[raw.rindex(")") + 2 :].split()
        out[int(d)] = (int(f[1]), name, (int(f[11]) + int(f[12])) / tick)
    return out


def cpu_by_role(server_pid: int) -> dict[str, float]:
    """CPU seconds so far of this script's server process and of its Chromium processes."""
    procs = _proc_cpu()
    mine = {os.getpid()}
    grew = True
    while grew:  # every descendant of this script
        new = {p for p, (pp, _n, _c) in procs.items() if pp in mine} - mine
        grew = bool(new)
        mine |= new
    return {
        "server": procs.get(server_pid, (0, "", 0.0))[2],
        "chromium": sum(c for p, (_pp, n, c) in procs.items() if p in mine and "chrom" in n),
    }


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

    load0 = [round(x, 2) for x in os.getloadavg()]
    tmp = Path(tempfile.mkdtemp(prefix="wargame-load-"))
    server = Server(tmp / "load.db").start()
    stats = Stats()
    stop = threading.Event()
    report: dict = {
        "players": args.players,
        "pages": args.pages,
        "turns": args.turns,
        "server_log": str(server.log),
    }
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
                page.add_init_script(WATCH_JS)
                page.goto(f"{server.url}/join?game={gid}&code={codes[team]}")
                page.get_by_label("your name").fill(f"page{k}")
                page.locator(".wg-join").click()
                page.wait_for_selector("text=turn 1 of", timeout=120000)
                pages.append((team, page))
            report["pages_joined_seconds"] = round(time.perf_counter() - t0, 2)
            advances, turns = [], []
            cpu0 = cpu_by_role(server.proc.pid)
            for turn in range(args.turns):
                deadline = time.time() + 60
                while time.time() < deadline:
                    with stats.lock:
                        n = sum(1 for t, _ in stats.submitted if t == turn)
                    if n >= args.players:
                        break
                    time.sleep(0.2)
                label = f"turn {turn + 2} of" if turn + 1 < args.turns else "The game is over"
                _st, fs = server.call("GET", f"/api/games/{gid}/state", token=fac)
                month = fs["turn_dates"][1]  # the last month the turn plays: every chart's stamp
                for _team, page in pages:
                    page.evaluate("a => window.__wg.expect(a)", [label, month])
                t_start = time.time()
                st, r = server.call("POST", f"/api/games/{gid}/advance", {"when": "now"}, fac)
                t_done = time.time()
                if st != 200:
                    stats.errors.append(f"advance {st} {r}")
                    break
                advances.append(t_done - t_start)
                if r["record"]["date_to"] != month:
                    stats.errors.append(f"advance: played to {r['record']['date_to']}")
                for _team, page in pages:
                    page.wait_for_function(
                        "w => window.__wg.seen[w] && window.__wg.seen[w].frame",
                        arg=label,
                        timeout=60000,
                    )
                    if page.evaluate(STAMPED):
                        page.wait_for_function(
                            "m => window.__wg.charts[m]", arg=month, timeout=60000
                        )
                seen = [p.evaluate("w => window.__wg.seen[w]", label) for _t, p in pages]
                drawn = [p.evaluate("m => window.__wg.charts[m] || null", month) for _t, p in pages]
                busy = [
                    p.evaluate(
                        "([a, b]) => window.__wg.busy(a, b)", [t_start * 1000, d or x["frame"]]
                    )
                    for (_t, p), d, x in zip(pages, drawn, seen, strict=True)
                ]
                shown = [x["frame"] / 1000 - t_done for x in seen]
                charts_at = [d / 1000 - t_done for d in drawn if d is not None] or [float("nan")]
                rec = {
                    "turn": turn + 1,
                    "advance_ms": round((t_done - t_start) * 1000),
                    "pages_show_new_turn_s": sorted(round(x, 3) for x in shown),
                    "charts_show_new_months_s": sorted(round(x, 3) for x in charts_at),
                    "page_long_tasks_ms_mean": round(statistics.mean(busy)),
                    "load_1min": round(os.getloadavg()[0], 2),
                }
                turns.append(rec)
                print(
                    f"turn {turn + 1}: advance {rec['advance_ms']} ms; the {len(pages)} pages "
                    f"show the new turn {min(shown):.2f} to {max(shown):.2f} s after it "
                    f"(charts by {max(charts_at):.2f} s; long tasks "
                    f"{rec['page_long_tasks_ms_mean']} ms a page); load "
                    f"{rec['load_1min']}",
                    flush=True,
                )
            cpu1 = cpu_by_role(server.proc.pid)
            report["cpu_seconds_per_turn"] = {
                k: round((cpu1[k] - cpu0[k]) / max(len(turns), 1), 2) for k in cpu0
            }
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

        def q90(xs):
            return round(statistics.quantiles(xs, n=10)[8], 2) if len(xs) > 10 else None

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
            "load_average_start": load0,
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "turns_detail": turns,
        }
        every = [x for rec in turns for x in rec["pages_show_new_turn_s"]]
        worst = [max(rec["pages_show_new_turn_s"]) for rec in turns]
        drawn_all = [x for rec in turns for x in rec["charts_show_new_months_s"]]
        report |= {
            "pages_show_new_turn_s_p50": round(statistics.median(every), 2) if every else None,
            "pages_show_new_turn_s_p90": q90(every),
            "pages_show_new_turn_s_max": round(max(every), 2) if every else None,
            "slowest_page_per_turn_s": [round(x, 2) for x in worst],
            "charts_show_new_months_s_p50": round(statistics.median(drawn_all), 2)
            if drawn_all
            else None,
            "charts_show_new_months_s_p90": q90(drawn_all),
            "charts_show_new_months_s_max": round(max(drawn_all), 2) if drawn_all else None,
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
