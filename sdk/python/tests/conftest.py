"""The real server for the SDK's tests, as the Rust end-to-end harness
(`bin/agentvista/tests/e2e/harness.rs`) runs it: the release binary, on port 0 (it prints
the address it got), with a SQLite database of its own in a temporary directory, and users
and keys created with its CLI on the same database and configuration.

The binary is `$AGENTVISTA_BIN`, default `/var/tmp/agentvista-target/release/agentvista`;
without it every test that needs the server is skipped, saying why.
"""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import agentvista

DEFAULT_BIN = "/var/tmp/agentvista-target/release/agentvista"
PASSWORD = "correct horse battery"
#: The plan of the quota test: 3 events a month, a hard limit.
TINY_PLAN = "tiny"
TINY_EVENTS = 3
#: The server's body and attribute limits, set here rather than taken from its defaults so
#: that the 413 and 400 tests know what is past them (and stay small).
MAX_BODY_BYTES = 1024 * 1024
MAX_ATTRIBUTE_BYTES = 64 * 1024
START_DEADLINE = 60.0
REQUEST_TIMEOUT = 10.0

CONFIG = f"""
[plans.{TINY_PLAN}]
monthly_events = {TINY_EVENTS}
overage_cents_per_1000_events = 0

[limits]
max_body_bytes = {MAX_BODY_BYTES}
max_attribute_bytes = {MAX_ATTRIBUTE_BYTES}
"""


def binary() -> str:
    return os.environ.get("AGENTVISTA_BIN") or DEFAULT_BIN


class Server:
    """A running `agentvista serve` and the CLI on its database and configuration."""

    def __init__(self, path: str, workdir: Path) -> None:
        self.bin = path
        self.workdir = workdir
        (workdir / "agentvista.toml").write_text(CONFIG)
        self.env: dict[str, str] = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AGENTVISTA") and k != "RUST_LOG"
        }
        self.env["AGENTVISTA__DATABASE__URL"] = (
            f"sqlite://{workdir / 'agentvista.db'}?mode=rwc"
        )
        self.log: list[str] = []
        self._listening = threading.Event()
        self.base = ""
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        env = dict(self.env)
        env["AGENTVISTA__SERVER__BIND"] = "127.0.0.1:0"
        env["AGENTVISTA__SERVER__INSECURE_COOKIES"] = "true"
        self.process = subprocess.Popen(
            [self.bin, "serve"],
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        threading.Thread(target=self._read, daemon=True).start()
        # The reader sets the event on the line naming the address, or when the output ends.
        if not self._listening.wait(START_DEADLINE) or not self.base:
            self.stop()
            raise RuntimeError("the server did not start:\n" + "".join(self.log))

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        marker = "listening on http://"
        for line in self.process.stdout:
            self.log.append(line)
            at = line.find(marker)
            if at >= 0 and not self.base:
                self.base = line[at + len("listening on "):].split()[0].strip()
                self._listening.set()
        self._listening.set()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cli(self, *args: str, password: str | None = None) -> str:
        """Runs a CLI command that must succeed; returns its standard output."""
        env = dict(self.env)
        if password is not None:
            env["AGENTVISTA_PASSWORD"] = password
        done = subprocess.run(
            [self.bin, *args],
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            # Checked below, so that a failure shows the CLI's stderr.
            check=False,
        )
        assert done.returncode == 0, f"agentvista {args[:2]} failed: {done.stderr}"
        return done.stdout

    def get(self, path: str, key: str) -> requests.Response:
        return requests.get(
            self.base + path,
            headers={"Authorization": f"Bearer {key}"},
            timeout=REQUEST_TIMEOUT,
        )

    def get_json(self, path: str, key: str) -> Any:
        response = self.get(path, key)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()


class Account:
    """A user in an account of its own, created with the CLI."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.email = f"sdk-{uuid.uuid4().hex[:12]}@example.com"
        server.cli("users", "create", "--email", self.email, password=PASSWORD)
        self.keys: list[str] = []

    def key(self, name: str, scopes: str, *extra: str) -> str:
        key = self.server.cli(
            "keys", "create", "--email", self.email, "--name", name, "--scopes", scopes, *extra
        ).strip()
        assert key.startswith("av_") and len(key) == 50, f"not a key: {key[:11]}…"
        self.keys.append(key)
        return key

    def revoke(self, key: str) -> None:
        """Revokes with the CLI, which returns once no running server accepts the key."""
        self.server.cli("keys", "revoke", "--email", self.email, "--prefix", key[:11])

    def set_plan(self, plan: str) -> None:
        self.server.cli("accounts", "set-plan", "--email", self.email, "--plan", plan)

    def secrets(self) -> list[str]:
        """What must never be logged: each key's part after its prefix."""
        return [key[12:] for key in self.keys]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    path = binary()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.skip(
            f"no AgentVista server binary at {path}: build it with `CARGO_TARGET_DIR="
            "/var/tmp/agentvista-target cargo build --release -p agentvista`, or set "
            "AGENTVISTA_BIN to its path"
        )
    running = Server(path, tmp_path_factory.mktemp("agentvista-server"))
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def account(server: Server) -> Account:
    return Account(server)


@pytest.fixture(autouse=True)
def fresh_sdk(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without an `init` and without the SDK's environment variables."""
    for name in ("AGENTVISTA_API_KEY", "AGENTVISTA_HOST", "OTEL_SERVICE_NAME"):
        monkeypatch.delenv(name, raising=False)
    agentvista._reset()
    yield
    agentvista._reset()

