"""Debian's Chromium for headless use: its path and the flags that keep it off the network.

Shared by the browser tests and the browser benchmarks. Playwright for Python drives this
browser (``executable_path=CHROMIUM``); it never downloads one of its own. Without the
background-networking flags, Chromium keeps trying to reach outside hosts that a closed
network refuses.
"""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
