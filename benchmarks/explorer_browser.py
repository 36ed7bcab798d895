"""How responsive the explorer is, measured in a real browser (Debian's Chromium + Playwright).

``python -m benchmarks.explorer_browser`` starts the explorer's server (as ``lanthanide
explore`` does) on a free port, opens the page and measures:

- page ready: from navigation to every chart drawn (the Step button and all canvases there);
- Step to charts: from a Step click to every chart showing the new month (each chart sets
  ``data-stamp`` on its element once Vega has drawn the month), early in the run;
- the same after playing to near the horizon (history must not slow a month's redraw);
- play speed at "max": months per second over the first and the last stretch of the run;
- the CPU time per Step of the server and of the browser's processes (from /proc): what a
  month costs whatever the machine's load (the server's figure includes the verdict, which is
  recomputed after each pause in the clicks).

Prints a table; ``--json PATH`` writes the figures; ``--shots DIR`` saves full-page screenshots.
Not a test: nothing fails on speed. On a shared machine wall times follow the load average,
which is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import time
from pathlib import Path

from viz.browser import CHROMIUM, CHROMIUM_ARGS

ALL_SHOW = """(stamp) => {
    const els = [...document.querySelectorAll('.lanthanide-chart')];
    return els.length >= 7 && els.every(e => e.dataset.stamp === stamp);
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants_cpu(root: int) -> float:
    """CPU seconds used so far by every process below ``root`` (the browser's processes)."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
                parent[int(d.name)] = int(stat[1])
            except OSError:
                continue
    total = 0.0
    for pid in parent:
        p, depth = pid, 0
        while p in parent and p != root and depth < 50:
            p, depth = parent[p], depth + 1
        if p == root and pid != root:
            try:
                total += _cpu_seconds(pid)
            except OSError:
                pass
    return total


def _stamp(page) -> str:
    return page.evaluate("() => document.querySelector('.lanthanide-chart').dataset.stamp")


def _step(page, n_expected: str) -> float:
    t0 = time.perf_counter()
    page.get_by_role("button", name="Step").click()
    page.wait_for_function(ALL_SHOW, arg=n_expected, timeout=120_000)
    return time.perf_counter() - t0


def _date(start: tuple[int, int], month: int) -> str:
    total = start[0] * 12 + start[1] - 1 + month
    return f"{total // 12:04d}-{total % 12 + 1:02d}"


def _ms(xs: list[float]) -> dict:
    xs = sorted(xs)
    return {
        "median_ms": round(1000 * statistics.median(xs), 1),
        "p90_ms": round(1000 * xs[int(0.9 * (len(xs) - 1))], 1),
        "n": len(xs),
    }


def run(steps: int = 15, shots: Path | None = None) -> dict:
    """Measure the explorer on the default scenario; returns the figures."""
    from playwright.sync_api import sync_playwright

    from abm.scenario import load_scenario
    from viz.assets import ensure_assets
    from viz.serve import server_command, server_env

    ensure_assets(quiet=True)
    scn = load_scenario("default")
    start = scn.start_ym
    port = _free_port()
    proc = subprocess.Popen(
        server_command("127.0.0.1", port),
        env=server_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out: dict = {"scenario": scn.name, "horizon": scn.months, "firms": scn.firms}
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 3400})
            t0 = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_role("button", name="Step").wait_for(timeout=120_000)
            page.locator(".lanthanide-chart canvas").first.wait_for(timeout=120_000)
            page.wait_for_function(ALL_SHOW, arg="", timeout=120_000)
            out["page_ready_s"] = round(time.perf_counter() - t0, 2)
            # early months: Step clicks
            cpu0, bcpu0 = _cpu_seconds(proc.pid), _descendants_cpu(os.getpid())
            early = [_step(page, _date(start, k)) for k in range(steps)]
            out["server_cpu_ms_per_step_early"] = round(
                1000 * (_cpu_seconds(proc.pid) - cpu0) / steps, 1
            )
            out["browser_cpu_ms_per_step_early"] = round(
                1000
                * (_descendants_cpu(os.getpid()) - bcpu0 - (_cpu_seconds(proc.pid) - cpu0))
                / steps,
                1,
            )
            out["step_to_charts_early"] = _ms(early)
            if shots:
                shots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=shots / "explorer-early.png", full_page=True)
                page.locator(".lanthanide-view-flows").screenshot(path=shots / "explorer-flows.png")
            # play at full speed to near the horizon, timing the stretches
            page.get_by_role("button", name="max").click()
            target = scn.months - 3 * steps - 24
            t_play = time.perf_counter()
            page.get_by_role("button", name="Play").click()
            marks = []
            month = steps
            while month < target:
                page.wait_for_timeout(100)
                stamp = _stamp(page)
                if stamp:
                    y, m = int(stamp[:4]), int(stamp[5:7])
                    month = (y * 12 + m - 1) - (start[0] * 12 + start[1] - 1) + 1
                    marks.append((time.perf_counter() - t_play, month))
            pause = page.get_by_role("button", name="Pause")
            if pause.count():
                pause.click()
            page.get_by_role("button", name="Play").wait_for(timeout=60_000)
            page.wait_for_timeout(1500)  # let the last played month settle
            if len(marks) > 4:
                q = len(marks) // 4
                (t_a, m_a), (t_b, m_b) = marks[0], marks[q]
                (t_c, m_c), (t_d, m_d) = marks[-q - 1], marks[-1]
                out["play_months_per_s_first_quarter"] = round((m_b - m_a) / (t_b - t_a), 1)
                out["play_months_per_s_last_quarter"] = round((m_d - m_c) / (t_d - t_c), 1)
            # late months: Step clicks again, with most of the history on screen
            now = _stamp(page)
            y, m = int(now[:4]), int(now[5:7])
            done = (y * 12 + m - 1) - (start[0] * 12 + start[1] - 1) + 1
            n_late = min(steps, scn.months - done)
            cpu0, bcpu0 = _cpu_seconds(proc.pid), _descendants_cpu(os.getpid())
            late = [_step(page, _date(start, done + k)) for k in range(n_late)]
            if n_late:
                out["server_cpu_ms_per_step_late"] = round(
                    1000 * (_cpu_seconds(proc.pid) - cpu0) / n_late, 1
                )
                out["browser_cpu_ms_per_step_late"] = round(
                    1000
                    * (_descendants_cpu(os.getpid()) - bcpu0 - (_cpu_seconds(proc.pid) - cpu0))
                    / n_late,
                    1,
                )
                out["step_to_charts_late"] = _ms(late)
                out["late_from_month"] = done + 1
            if shots:
                page.wait_for_timeout(1500)  # the leverage meter follows the charts
                page.screenshot(path=shots / "explorer-late.png", full_page=True)
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    out["load_average_1min"] = round(os.getloadavg()[0], 2)
    out["cores"] = os.cpu_count()
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m benchmarks.explorer_browser [--steps N] [--json P]``."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.explorer_browser", description=__doc__)
    ap.add_argument("--steps", type=int, default=15, help="Step clicks timed early and late")
    ap.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    ap.add_argument("--shots", type=Path, default=None, help="save screenshots in this folder")
    args = ap.parse_args(argv)
    res = run(args.steps, args.shots)
    for key, value in res.items():
        print(f"{key:36s} {value}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
