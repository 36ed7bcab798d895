"""The explorer in a real browser: Debian's Chromium driven by Playwright (never downloaded).

One server (``lanthanide explore``'s Solara server, a real subprocess on a free port) serves
every test of this module; each test opens its own page, so each has its own session.
"""

from __future__ import annotations

import io
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest

from viz.browser import CHROMIUM, CHROMIUM_ARGS

LOCAL = {"127.0.0.1", "localhost", "::1", "[::1]"}
ALL_CHARTS_SHOW = """(stamp) => {
    const els = [...document.querySelectorAll('.lanthanide-chart')];
    return els.length >= 7 && els.every(e => e.dataset.stamp === stamp);
}"""

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (.ci/run installs it)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The explorer's server as ``lanthanide explore`` starts it; killed afterwards."""
    from viz.assets import AssetsError, ensure_assets
    from viz.serve import server_command, server_env

    try:
        ensure_assets(quiet=True)  # the offline front end (npm pack, once per environment)
    except AssetsError as exc:
        pytest.fail(f"front-end files: {exc}")
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            server_command("127.0.0.1", port),
            env=server_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parent.parent,
        )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("server did not start in 90 s")
        yield {"url": f"http://127.0.0.1:{port}/", "log": log}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Explorer:
    """A page of the explorer and what it asked the network for."""

    def __init__(self, browser, url: str, tmp_path: Path, server_log: Path):
        self.tmp = tmp_path
        self.server_log = server_log
        self.context = browser.new_context(viewport={"width": 1600, "height": 1200})
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.failed: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("response", lambda r: self.failed.append(r.url) if r.status >= 400 else None)
        self.page.on("requestfailed", lambda r: self.failed.append(r.url))
        self.page.goto(url)
        self.page.get_by_role("button", name="Step").wait_for(timeout=60_000)
        self.wait_charts("")

    def clock(self) -> str:
        return self.page.locator(".lanthanide-clock").inner_text()

    def wait_charts(self, stamp: str) -> None:
        """Wait until every chart shows month ``stamp`` ("" = drawn, before any month)."""
        self.page.locator(".lanthanide-chart canvas").first.wait_for(timeout=60_000)
        self.page.wait_for_function(ALL_CHARTS_SHOW, arg=stamp, timeout=60_000)

    def step(self, stamp: str) -> None:
        self.page.get_by_role("button", name="Step").click()
        self.page.locator(".lanthanide-clock", has_text=stamp).wait_for(timeout=60_000)
        self.wait_charts(stamp)

    def download(self, label: str) -> bytes:
        with self.page.expect_download(timeout=60_000) as info:
            self.page.get_by_role("button", name=label).click()
        path = self.tmp / info.value.suggested_filename
        info.value.save_as(path)
        return path.read_bytes()

    def shot(self, name: str) -> Path:
        path = self.tmp / name
        self.page.screenshot(path=path, full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def explorer(server, browser, tmp_path):
    e = Explorer(browser, server["url"], tmp_path, server["log"])
    yield e
    e.close()


def test_page_loads_offline_and_step_advances_the_charts(explorer):
    e = explorer
    assert "month 0 of" in e.clock()
    chart = e.page.locator(".lanthanide-view-share .lanthanide-chart canvas").first
    before = chart.screenshot()
    e.step("2025-01")
    e.step("2025-02")
    assert "2025-02, month 2 of" in e.clock()
    assert chart.screenshot() != before  # the chart drew the new months
    e.shot("after-two-steps.png")
    # every request the page made stayed on this machine, and every one was answered
    hosts = {urlparse(u).hostname for u in e.requests if not u.startswith(("data:", "blob:"))}
    assert hosts and hosts <= LOCAL, hosts
    assert not e.failed, e.failed
    assert any("/_solara/cdn/vega@5/" in u for u in e.requests)
    # and the server never had to fetch a front-end file from outside (its proxy cache had all)
    log = e.server_log.read_text(errors="replace")
    assert "Could not load URL" not in log, log[-2000:]


def test_the_page_never_sends_chart_data_back(explorer):
    """Vega changes the rows it draws; the page must not sync them back to the server.

    (It did: each changed trade-flow table went to the server, was echoed back as a new table,
    drawn, changed again, and so on, for as long as the page was open.)
    """
    e = explorer
    sent: list[str] = []
    e.page.on("websocket", lambda ws: ws.on("framesent", lambda f: sent.append(str(f))))
    e.page.reload()
    e.page.get_by_role("button", name="Step").wait_for(timeout=60_000)
    e.wait_charts("")
    e.step("2025-01")
    e.step("2025-02")
    e.page.wait_for_timeout(1500)  # time for a loop, had there been one
    back = [f for f in sent if '"chunk"' in f or '"full"' in f]
    assert sent and not back, back[:2]


def test_a_lever_change_and_reset_change_the_outcome(explorer):
    e = explorer
    for stamp in ("2025-01", "2025-02", "2025-03"):
        e.step(stamp)
    base = pd.read_parquet(io.BytesIO(e.download("timeseries.parquet")))
    # Japan's stockpile target, pushed to the slider's top with the keyboard
    e.page.locator(".v-select", has_text="State").click()
    e.page.get_by_role("option", name="Japan").click()
    thumb = e.page.locator(".v-input", has_text="stockpile target").get_by_role("slider")
    thumb.focus()
    thumb.press("End")
    e.page.get_by_text("press Reset").wait_for()
    e.page.get_by_role("button", name="Reset").click()
    e.page.locator(".lanthanide-clock", has_text="month 0 of").wait_for()
    for stamp in ("2025-01", "2025-02", "2025-03"):
        e.step(stamp)
    e.shot("after-lever-and-reset.png")
    changed = pd.read_parquet(io.BytesIO(e.download("timeseries.parquet")))

    def stockpile(ts):
        rows = ts[(ts.variable == "stockpile_t") & (ts.run == "scenario")]
        return rows.loc[rows.country == "Japan", "value"].sum()

    assert stockpile(changed) > stockpile(base)
    summary = e.download("summary.json")
    assert b'"verdict"' in summary


def test_a_bad_upload_shows_its_error_and_the_app_keeps_working(explorer, tmp_path):
    e = explorer
    bad = tmp_path / "bad-scenario.toml"
    bad.write_text('extends = "taiwan-crisis"\n[countries.Japan]\nresolve = 500\n')
    e.page.locator(".lanthanide-upload input[type=file]").set_input_files(bad)
    msg = "countries.Japan.resolve: 500.0 is out of range"
    e.page.get_by_text(msg).wait_for(timeout=30_000)
    e.shot("bad-upload.png")
    e.step("2025-01")  # still works
    good = tmp_path / "short.toml"
    good.write_text('extends = "taiwan-crisis"\nname = "short"\nmonths = 12\n')
    e.page.locator(".lanthanide-upload input[type=file]").set_input_files(good)
    e.page.locator(".lanthanide-clock", has_text="short, seed").wait_for(timeout=30_000)
    assert "month 0 of 12" in e.clock()
    assert e.page.get_by_text(msg).count() == 0
    e.step("2025-01")
