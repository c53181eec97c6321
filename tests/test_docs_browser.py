"""`/docs` and `/redoc` in headless Chromium, against a real server on 127.0.0.1 and with every other host
unresolvable: the pages render the operations the document has, and ask no other host for anything.
Screenshots are kept in `ARTIFACTS` for people to look at."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import databases, fuzzing

pytestmark = pytest.mark.slow

ARTIFACTS = Path(tempfile.gettempdir()) / "artifacts" / "docs"
BROWSER_SECONDS = 120
# Headless, as root (CI's user) with no sandbox, and no host but loopback resolvable: the pages must render
# without the internet, and the browser's own background traffic (updates, sync) goes nowhere.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--window-size=1280,1600",
    # Time enough, in the page's own clock, to fetch the document and render it.
    "--virtual-time-budget=20000",
]


def install_chromium() -> str | None:
    """Debian's `chromium`, installed with apt-get where it is missing and this user may install."""
    found = shutil.which("chromium")
    if found or shutil.which("apt-get") is None or os.geteuid() != 0:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def chromium() -> str:
    found = install_chromium()
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is required under CI=true and could not be installed")
        pytest.skip("Chromium is not installed (Debian's `chromium` package) and cannot be installed here")
    return found


@pytest.fixture
def base_url(sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    with fuzzing.running_server(databases.sqlite_copy(sqlite_template, tmp_path), tmp_path) as server:
        yield server.base_url


def browse(chromium: str, url: str, profile: Path, *action: str) -> str:
    """Chromium's output for `action` on `url`, in a profile of its own."""
    done = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *action, url],
        capture_output=True,
        text=True,
        timeout=BROWSER_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def page_requests(net_log: Path, origin: str) -> set[str]:
    """The URLs the page at `origin` asked for, from Chromium's NetLog (the browser's own have no such
    initiator)."""
    text = net_log.read_text()
    try:
        log = json.loads(text)
    except ValueError:  # a log cut off at exit lacks its closing brackets
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return {
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start_job and event.get("params", {}).get("initiator") == origin
    }


class Operations(HTMLParser):
    """The `data-path` of each operation Swagger UI rendered, and each ReDoc heading's text."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []
        self.authorize_buttons = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        if "opblock-summary-path" in classes and values.get("data-path"):
            self.paths.append(str(values["data-path"]))
        if "authorization__btn" in classes:
            self.authorize_buttons += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def rendered(dom: str) -> Operations:
    parser = Operations()
    parser.feed(dom)
    return parser


def operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every operation the document describes: its paths', and the webhooks reachout sends."""
    items = [*document["paths"].values(), *document.get("webhooks", {}).values()]
    return [operation for item in items for operation in item.values()]


@pytest.mark.parametrize(("page", "screenshot"), [("/docs", "swagger-ui.png"), ("/redoc", "redoc.png")])
def test_the_docs_render_every_operation_offline(
    chromium: str, base_url: str, tmp_path: Path, page: str, screenshot: str
) -> None:
    document = httpx.get(f"{base_url}/openapi.json").json()
    net_log = tmp_path / "net-log.json"
    dom = browse(
        chromium, base_url + page, tmp_path / "dom-profile", "--dump-dom", f"--log-net-log={net_log}"
    )
    shown = rendered(dom)
    if page == "/docs":
        named = {**document["paths"], **document.get("webhooks", {})}
        assert sorted(shown.paths) == sorted(path for path, item in named.items() for _ in item), shown.paths
        assert shown.authorize_buttons == sum("security" in op for op in operations(document))
    else:
        text = re.sub(r"\s+", " ", " ".join(shown.text))
        missing = [op["summary"] for op in operations(document) if op["summary"] not in text]
        assert missing == [], f"ReDoc shows no {missing}"
    asked = page_requests(net_log, base_url)
    assert f"{base_url}/openapi.json" in asked, asked  # the log names what the page asked for
    assert {url for url in asked if not url.startswith(f"{base_url}/")} == set()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / screenshot
    target.unlink(missing_ok=True)
    browse(chromium, base_url + page, tmp_path / "shot-profile", f"--screenshot={target}")
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert target.stat().st_size > 20_000  # a blank page of that size is a few kB
