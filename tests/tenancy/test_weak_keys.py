"""A key others could guess, served on an address others can reach, is warned of at start-up: the account is
named, the key never."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from reachout import logs
from reachout.app import create_app
from reachout.kit.clock import FakeClock
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from reachout.tenancy.keys import WELL_KNOWN_KEYS, weakness
from tests.support.service import make_settings

DEMO_KEY = next(iter(WELL_KNOWN_KEYS))
SHORT_KEY = "rk_short_key_19char"  # 19 characters
STRONG_KEY = "rk_live_2bV9qLmX0cPz7RtY"


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def provisioning_file(tmp_path: Path) -> Path:
    document = {
        "accounts": [
            {"id": "weakling", "api_keys": [SHORT_KEY, STRONG_KEY]},
            {"id": "demo-copy", "api_keys": [DEMO_KEY]},
            {"id": "careful", "api_keys": [STRONG_KEY + "x"]},
        ]
    }
    path = tmp_path / "keys.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


async def start(settings: Any, clock: FakeClock, host: str) -> None:
    app = create_app(settings, clock=clock, run_worker=False, listen_host=host)
    async with app.router.lifespan_context(app):
        pass


def warnings(err: str) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return [e for e in events if e["event"].startswith("an API key others could guess")]


REACHABLE = ["0.0.0.0", "::", "192.0.2.10", "reachout.example.com"]
LOOPBACK = ["127.0.0.1", "::1", "localhost", "127.8.9.10"]
WEAK = [("demo-copy", "it is the demo's well-known key"), ("weakling", "it is shorter than 20 characters")]


@pytest.mark.parametrize(("host", "warned"), [(h, WEAK) for h in REACHABLE] + [(h, []) for h in LOOPBACK])
async def test_weak_keys_are_warned_of_by_account_on_a_reachable_address_only(
    database_url: str,
    clock: FakeClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    host: str,
    warned: list[tuple[str, str]],
) -> None:
    logs.configure("INFO", json=True)
    await start(make_settings(database_url, config=provisioning_file(tmp_path)), clock, host)
    err = capsys.readouterr().err
    assert sorted((w["account"], w["reason"]) for w in warnings(err)) == warned
    assert all(w["host"] == host for w in warnings(err))
    for key in (DEMO_KEY, SHORT_KEY, STRONG_KEY):
        assert key not in err


async def test_the_demo_key_provisioned_earlier_is_recognised_by_its_hash(
    database_url: str, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(database_url)  # no provisioning file: the keys are in the database only
    app = create_app(settings, clock=clock, run_worker=False)
    async with app.router.lifespan_context(app), app.state.runtime.database.write.begin() as session:
        document = {"accounts": [{"id": "demo", "api_keys": [DEMO_KEY]}]}
        await provisioning.apply(session, loader.parse(document, "test"), clock.now())
    logs.configure("INFO", json=True)
    await start(settings, clock, "0.0.0.0")
    [warning] = warnings(capsys.readouterr().err)
    assert (warning["account"], warning["reason"]) == ("demo", "it is the demo's well-known key")


@pytest.mark.parametrize(
    ("key", "weak"), [(DEMO_KEY, True), ("x" * 19, True), ("x" * 20, False), (STRONG_KEY, False)]
)
def test_weakness(key: str, weak: bool) -> None:
    assert (weakness(key) is not None) is weak
