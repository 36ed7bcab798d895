"""How responsive the explorer is, measured in a real browser (Debian's Chromium + Playwright).

``python -m benchmarks.explorer_browser`` starts the explorer's server (as ``lanthanide
explore`` does) on a free port, opens the page and measures:

- page ready: from navigation to every chart drawn (the Step button and all seven charts there);
- Step to charts, early (from month ``--early-month``, default 10) and late (from month
  ``--late-month``, default 180, reached by playing at "max"): for each Step click, the time on
  the page's own clock (``performance.now()``) from the click event to the moment the last of
  the seven charts has drawn the new month (each chart stamps its element with the month it
  shows, ``data-stamp``, and the time Vega finished drawing it, ``data-drawn-at``). The wall time
  seen by this script (which adds Playwright's own polling) is reported beside it;
- play speed at "max": months per second over the first and the last quarter of the play, read
  from the page's month clock (what the server has simulated), and how far the charts lagged
  behind the clock while playing;
- the CPU time per Step of the server and of the browser's processes (from /proc): what a month
  costs whatever the machine's load (the server's figure includes the verdict, which is
  recomputed after each pause in the clicks).

Every wait has a time limit and the whole run has one (``--timeout``): the benchmark always
ends, with its figures or with a one-line message saying what it was waiting for. It kills the
server and the browser it started. Prints a table; ``--json PATH`` writes the figures;
``--shots DIR`` saves full-page screenshots. Not a test: nothing fails on speed. On a shared
machine wall times follow the load average, which is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from viz.browser import CHROMIUM, CHROMIUM_ARGS

N_CHARTS = 7
ALL_SHOW = f"""(stamp) => {{
    const els = [...document.querySelectorAll('.lanthanide-chart')];
    return els.length >= {N_CHARTS} && els.every(e => e.dataset.stamp === stamp);
}}"""
# the page's clock: the time of each click, and when each chart last finished drawing
HOOK_CLICKS = """() => {
    if (!window.__lanthanideClicks) {
        window.__lanthanideClicks = [];
        document.addEventListener('click', () => window.__lanthanideClicks.push(performance.now()),
                                  true);
    }
}"""
LAST_CLICK_TO_DRAWN = """() => {
    const clicks = window.__lanthanideClicks;
    const drawn = [...document.querySelectorAll('.lanthanide-chart')]
        .map(e => +e.dataset.drawnAt || 0);
    return Math.max(...drawn) - clicks[clicks.length - 1];
}"""
CLOCK = "() => (document.querySelector('.lanthanide-clock') || {}).textContent || ''"
CHART_STAMP = "() => (document.querySelector('.lanthanide-chart') || {dataset: {}}).dataset.stamp"
PLAY_MARGIN = 40  # months before the late month at which playing is paused
POLL_MS = 50
WAIT_MS = 120_000  # the longest any one thing may take before the benchmark gives up


class BenchmarkError(RuntimeError):
    """The benchmark could not go on (the message says what it was waiting for)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(root: int) -> list[int]:
    """Every process below ``root``."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
                parent[int(d.name)] = int(stat[1])
            except OSError:
                continue
    out = []
    for pid in parent:
        p, depth = pid, 0
        while p in parent and p != root and depth < 50:
            p, depth = parent[p], depth + 1
        if p == root and pid != root:
            out.append(pid)
    return out


def _descendants_cpu(root: int) -> float:
    """CPU seconds used so far by every process below ``root``."""
    total = 0.0
    for pid in _descendants(root):
        try:
            total += _cpu_seconds(pid)
        except OSError:
            pass
    return total


def _date(start: tuple[int, int], month: int) -> str:
    """'YYYY-MM' of month index ``month`` (0 = the start month)."""
    total = start[0] * 12 + start[1] - 1 + month
    return f"{total // 12:04d}-{total % 12 + 1:02d}"


def _ms(xs: list[float]) -> dict:
    xs = sorted(xs)
    return {
        "median_ms": round(1000 * statistics.median(xs), 1),
        "p90_ms": round(1000 * xs[int(0.9 * (len(xs) - 1))], 1),
        "max_ms": round(1000 * xs[-1], 1),
        "n": len(xs),
    }


def _clock_month(page) -> int:
    """Months simulated, from the page's clock line ('..., month N of H')."""
    text = page.evaluate(CLOCK)
    m = re.search(r"month (\d+) of (\d+)", text)
    if not m:
        raise BenchmarkError(f"the page's month clock is not readable: {text!r}")
    return int(m.group(1))


def _wait_charts(page, stamp: str, what: str, timeout_ms: int = WAIT_MS) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        # polled every 50 ms, not every animation frame: a frame-by-frame poll makes the page
        # composite 60 times a second and takes CPU from what is measured
        page.wait_for_function(ALL_SHOW, arg=stamp, timeout=timeout_ms, polling=POLL_MS)
    except PlaywrightTimeout:
        shown = page.evaluate(
            "() => [...document.querySelectorAll('.lanthanide-chart')].map(e => e.dataset.stamp)"
        )
        raise BenchmarkError(
            f"{what}: the charts did not all show {stamp or 'their first table'} within "
            f"{timeout_ms / 1000:.0f} s (they show {shown}; clock: {page.evaluate(CLOCK)!r})"
        ) from None


def _steps(page, start, first_month: int, n: int, gap_ms: int) -> tuple[list, list]:
    """Click Step ``n`` times from ``first_month`` months done; (page times, wall times)."""
    on_page, wall = [], []
    for k in range(n):
        expected = _date(start, first_month + k)
        t0 = time.perf_counter()
        page.get_by_role("button", name="Step").click(timeout=WAIT_MS)
        _wait_charts(page, expected, f"Step {k + 1} of {n} (month {first_month + k + 1})")
        wall.append(time.perf_counter() - t0)
        on_page.append(page.evaluate(LAST_CLICK_TO_DRAWN) / 1000)
        if gap_ms:
            page.wait_for_timeout(gap_ms)
    return on_page, wall


def _timed_steps(page, start, proc_pid: int, done: int, n: int, gap_ms: int, tag: str) -> dict:
    """``n`` timed Step clicks after month ``done``: Step-to-charts, wall time, CPU per Step.

    The keys end in ``_{tag}`` (``early`` or ``late``).
    """
    before = (_cpu_seconds(proc_pid), _descendants_cpu(os.getpid()))
    on_page, wall = _steps(page, start, done, n, gap_ms)
    server = _cpu_seconds(proc_pid) - before[0]
    everything = _descendants_cpu(os.getpid()) - before[1]
    return {
        f"{tag}_from_month": done + 1,
        f"step_to_charts_{tag}": _ms(on_page),
        f"step_wall_{tag}": _ms(wall),
        f"server_cpu_ms_per_step_{tag}": round(1000 * server / n, 1),
        f"browser_cpu_ms_per_step_{tag}": round(1000 * (everything - server) / n, 1),
    }


def _play_to(page, start, target: int, horizon: int, deadline_s: float) -> dict:
    """Play at "max" until the clock reaches ``target`` months, then pause; returns figures."""
    from playwright.sync_api import Error as PlaywrightError

    page.get_by_role("button", name="max").click(timeout=WAIT_MS)
    page.get_by_role("button", name="Play").click(timeout=WAIT_MS)
    t_play = time.perf_counter()
    marks, lags = [], []
    month = _clock_month(page)
    while month < target:
        if time.perf_counter() - t_play > deadline_s:
            raise BenchmarkError(
                f"playing: the clock reached month {month}, not {target}, in {deadline_s:.0f} s"
            )
        page.wait_for_timeout(200)
        month = _clock_month(page)
        marks.append((time.perf_counter() - t_play, month))
        stamp = page.evaluate(CHART_STAMP) or ""
        if stamp:
            y, m = int(stamp[:4]), int(stamp[5:7])
            lags.append(month - ((y * 12 + m - 1) - (start[0] * 12 + start[1] - 1) + 1))
        if month >= horizon:
            break
    if month < horizon:
        # force: click at once, as a person would; Playwright's wait for the button to be
        # "stable" can take seconds while the page redraws every month
        pause = page.get_by_role("button", name="Pause")
        try:
            pause.click(timeout=10_000, force=True)
        except PlaywrightError:  # the run reached the horizon between the last read and the click
            if _clock_month(page) < horizon:
                raise BenchmarkError(
                    f"playing: Pause could not be clicked at month {month}"
                ) from None
    page.get_by_role("button", name="Play").wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(500)  # a month being stepped when Pause came is then drawn
    done = _clock_month(page)
    _wait_charts(page, _date(start, done - 1), f"after pausing at month {done}")
    out = {"played_to_month": done, "play_seconds": round(time.perf_counter() - t_play, 1)}
    if len(marks) > 8:
        q = len(marks) // 4
        (t_a, m_a), (t_b, m_b) = marks[0], marks[q]
        (t_c, m_c), (t_d, m_d) = marks[-q - 1], marks[-1]
        out["play_months_per_s_first_quarter"] = round((m_b - m_a) / (t_b - t_a), 1)
        out["play_months_per_s_last_quarter"] = round((m_d - m_c) / (t_d - t_c), 1)
    if lags:
        out["play_charts_behind_clock_max_months"] = max(lags)
    return out


def run(
    steps: int = 15,
    shots: Path | None = None,
    early_month: int = 10,
    late_month: int = 180,
    gap_ms: int = 0,
) -> dict:
    """Measure the explorer on the default scenario; returns the figures.

    Raises:
        BenchmarkError: something the benchmark waited for did not happen in time.
    """
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    from abm.scenario import load_scenario
    from viz.assets import ensure_assets
    from viz.serve import server_command, server_env

    ensure_assets(quiet=True)
    scn = load_scenario("default")
    start, horizon = scn.start_ym, scn.months
    if not 1 <= early_month < late_month < horizon:
        raise BenchmarkError(f"need 1 <= early month < late month < horizon ({horizon})")
    port = _free_port()
    proc = subprocess.Popen(
        server_command("127.0.0.1", port),
        env=server_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out: dict = {
        "scenario": scn.name,
        "horizon": horizon,
        "firms": scn.firms,
        "load_average_1min_start": round(os.getloadavg()[0], 2),
    }
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise BenchmarkError(f"the explorer's server exited (code {proc.returncode})")
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchmarkError("the explorer's server did not listen in 90 s") from None
                time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1600, "height": 3400})
                page.set_default_timeout(WAIT_MS)
                t0 = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/")
                _wait_charts(page, "", "loading the page")
                out["page_ready_s"] = round(time.perf_counter() - t0, 2)
                page.evaluate(HOOK_CLICKS)
                # to the early month with untimed clicks (the first month also builds the
                # export buttons), then the timed ones
                _steps(page, start, 0, early_month, 0)
                out.update(_timed_steps(page, start, proc.pid, early_month, steps, gap_ms, "early"))
                if shots:
                    shots.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=shots / "explorer-early.png", full_page=True)
                    page.locator(".lanthanide-view-flows").screenshot(
                        path=shots / "explorer-flows.png"
                    )
                # play at "max" to well before the late month (Pause lands a few months after
                # the click is sent), then untimed Step clicks to it
                out.update(_play_to(page, start, late_month - PLAY_MARGIN, horizon, 600))
                done = out["played_to_month"]
                if done < late_month:
                    _steps(page, start, done, late_month - done, 0)
                    done = late_month
                n_late = min(steps, horizon - done)
                if n_late < 1:
                    raise BenchmarkError(
                        f"playing ran to the horizon (month {done}); no late steps"
                    )
                out.update(_timed_steps(page, start, proc.pid, done, n_late, gap_ms, "late"))
                if shots:
                    page.wait_for_timeout(1500)  # the leverage meter follows the charts
                    page.screenshot(path=shots / "explorer-late.png", full_page=True)
            except PlaywrightError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                raise BenchmarkError(f"the browser: {first}") from None
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    out["gap_between_steps_ms"] = gap_ms
    out["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    out["cores"] = os.cpu_count()
    return out


def _watchdog(seconds: float) -> threading.Timer:
    """After ``seconds``, say so, end every process this benchmark started, and exit 1."""

    def fire():
        print(
            f"explorer_browser: gave up after {seconds:.0f} s (--timeout); the server and "
            "browser it started are ended",
            file=sys.stderr,
            flush=True,
        )
        for pid in _descendants(os.getpid()):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        os._exit(1)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m benchmarks.explorer_browser [--steps N] [--json P] ...``."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.explorer_browser", description=__doc__)
    ap.add_argument("--steps", type=int, default=15, help="Step clicks timed early and late")
    ap.add_argument("--early-month", type=int, default=10, help="months done before early clicks")
    ap.add_argument("--late-month", type=int, default=180, help="play to this month, then click")
    ap.add_argument("--gap-ms", type=int, default=0, help="pause between timed Step clicks")
    ap.add_argument("--timeout", type=float, default=900, help="give up after this many seconds")
    ap.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    ap.add_argument("--shots", type=Path, default=None, help="save screenshots in this folder")
    args = ap.parse_args(argv)
    from abm.scenario import load_scenario

    horizon = load_scenario("default").months
    if args.steps < 1:
        print("explorer_browser: --steps must be at least 1", file=sys.stderr)
        return 2
    if not 1 <= args.early_month < args.late_month < horizon:
        print(
            f"explorer_browser: --early-month and --late-month must satisfy "
            f"1 <= early < late < {horizon} (the horizon)",
            file=sys.stderr,
        )
        return 2
    timer = _watchdog(args.timeout)
    try:
        res = run(args.steps, args.shots, args.early_month, args.late_month, args.gap_ms)
    except BenchmarkError as exc:
        print(f"explorer_browser: {exc}", file=sys.stderr)
        return 1
    finally:
        timer.cancel()
    for key, value in res.items():
        print(f"{key:40s} {value}")
    if args.json:
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(res, indent=2) + "\n")
        tmp.replace(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
