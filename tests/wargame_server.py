"""A real ``lanthanide wargame`` process on a free port and a small JSON client.

Used by tests/test_wargame.py and benchmarks/wargame_load.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """Start, stop and restart a wargame server process on the loopback interface."""

    def __init__(self, db: Path, port: int | None = None, log: Path | None = None):
        self.db = Path(db)
        self.port = port or free_port()
        self.log = Path(log) if log else self.db.with_suffix(".log")
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> Server:
        cmd = [
            sys.executable,
            "-c",
            "import sys; from experiments.cli import main; sys.exit(main(sys.argv[1:]))",
            "wargame",
            "--port",
            str(self.port),
            "--db",
            str(self.db),
        ]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._logf = open(self.log, "ab")  # noqa: SIM115 (kept open while the server runs)
        self.proc = subprocess.Popen(cmd, stdout=self._logf, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2):
                    return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("server did not start in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if getattr(self, "_logf", None):
            self._logf.close()

    def kill(self) -> None:
        """Stop abruptly (no clean shutdown), as a crash would."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def call(self, method: str, path: str, body=None, token: str | None = None, raw=False):
        """One request; returns (status, JSON or bytes)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                payload = r.read()
                return r.status, payload if raw else json.loads(payload)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")
