"""Browser tests: a real `haetae serve --demo` subprocess and Debian's Chromium via Playwright.

Playwright cannot download its own browsers here, so the system Chromium is used. Without it
the tests skip locally but fail in CI (``CI`` set), where a skip would hide a broken check.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path(os.environ.get("HAETAE_E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The first start trains the demo fraud model on simulated data (about 15 s alone).
START_TIMEOUT_SECONDS = 120.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} not found (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()  # uvicorn shuts down cleanly on SIGTERM
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`haetae serve --demo` on free ports, with its own data directory; yields the base URL."""
    _require_chromium()  # no point starting a server nobody can drive
    data_dir = tmp_path_factory.mktemp("e2e-data")
    port, issuer_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "HAETAE_DATA_DIR": str(data_dir),
        "HAETAE_DATABASE_URL": "",
        # A list setting is read as JSON: HAETAE_ISSUERS__0__PORT is not understood.
        "HAETAE_ISSUERS": json.dumps([{"name": "sim", "port": issuer_port}]),
        "HAETAE_LOG_JSON": "false",
    }
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "haetae.cli", "serve", "--demo", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server did not become healthy:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield base_url
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    _require_chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, live_server: str) -> Iterator[Page]:
    """A fresh phone-sized tab (its own storage, so its own demo customer) per test."""
    context = browser.new_context(
        base_url=live_server,
        viewport={"width": 390, "height": 844},
        locale="ko-KR",
    )
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
