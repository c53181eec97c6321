"""Start-up mistakes end in a line or two and a non-zero exit, not a traceback; `--version`, `--help` and
`--fresh` do what they say. Each runs the real `reachout` command, as an operator would."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from reachout.db.engine import UnsupportedDatabaseURL, normalized_url
from reachout.provisioning.loader import ProvisioningError, load
from tests.support import databases
from tests.support.processes import REACHOUT, ReachoutProcess, free_port, reachout_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# Importing reachout takes seconds on a busy machine; a start-up mistake is reported right after.
COMMAND_TIMEOUT_SECONDS = 60


def run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `reachout ARGS` to its end (or the timeout), its output captured."""
    return subprocess.run(
        [str(REACHOUT), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        stdin=subprocess.DEVNULL,
    )


def short_failure(result: subprocess.CompletedProcess[str]) -> str:
    """The message of a command that failed as a start-up mistake should: briefly, with an error code."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    assert 1 <= len(result.stderr.strip().splitlines()) <= 3, output
    return result.stderr


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    return reachout_env(f"sqlite+aiosqlite:///{tmp_path / 'reachout.db'}")


@pytest.fixture(scope="module")
def postgres_admin() -> str:
    """The test PostgreSQL server's URL, as the suite's other PostgreSQL tests find it."""
    reason = databases.postgres_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true but does not answer: {reason}")
        pytest.skip(f"PostgreSQL not available ({reason}); set REACHOUT_TEST_POSTGRES_URL to run these")
    return databases.postgres_admin_url()


# --- what the command says about itself -----------------------------------------------------------------


def test_version_prints_the_version(sqlite_env: dict[str, str]) -> None:
    result = run(["--version"], sqlite_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("reachout "), result.stdout
    assert result.stdout.split()[1][0].isdigit(), result.stdout


@pytest.mark.parametrize("command", [[], ["serve"], ["worker"]], ids=["reachout", "serve", "worker"])
def test_help_shows_flags_as_flags_and_names_the_settings(
    command: list[str], sqlite_env: dict[str, str]
) -> None:
    result = run([*command, "--help"], {**sqlite_env, "COLUMNS": "110"})
    assert result.returncode == 0, result.stderr
    assert "<bool>" not in result.stdout, result.stdout
    for setting in ("REACHOUT_DATABASE_URL", "REACHOUT_CONFIG", "REACHOUT_PUBLIC_URL"):
        assert setting in result.stdout, result.stdout
    if command == ["serve"]:
        for flag in ("--no-worker", "--inline-worker", "--demo", "--fresh", "--host", "--port", "--config"):
            assert flag in result.stdout, result.stdout


# --- the database -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:pw@db.example:5433/app", "postgresql+asyncpg://u:pw@db.example:5433/app"),
        ("postgres://u@db.example/app", "postgresql+asyncpg://u@db.example/app"),
        ("postgresql+asyncpg://u@db.example/app", "postgresql+asyncpg://u@db.example/app"),
        ("sqlite:///./reachout.db", "sqlite+aiosqlite:///./reachout.db"),
        ("sqlite+aiosqlite:////tmp/x.db", "sqlite+aiosqlite:////tmp/x.db"),
    ],
)
def test_a_url_naming_only_its_database_gets_reachouts_driver(given: str, expected: str) -> None:
    assert normalized_url(given) == expected


@pytest.mark.parametrize(
    "given", ["postgresql+psycopg2://u:hunter2@h/app", "mysql://u:hunter2@h/app", "not a url hunter2"]
)
def test_another_driver_or_database_is_refused_without_its_password(given: str) -> None:
    with pytest.raises(UnsupportedDatabaseURL) as refused:
        normalized_url(given)
    assert "hunter2" not in str(refused.value)
    assert "postgresql+asyncpg://" in str(refused.value)


def test_a_postgresql_url_without_its_driver_starts_on_asyncpg(postgres_url: str, tmp_path: Path) -> None:
    plain = make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False)
    port = free_port()
    server = ReachoutProcess(
        ["serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)],
        reachout_env(plain),
        tmp_path / "serve.log",
        port,
    )
    try:
        server.start(ready_timeout=COMMAND_TIMEOUT_SECONDS)  # healthy: migrated and answering
    finally:
        server.stop()


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker"]], ids=["serve", "worker"])
def test_a_database_that_does_not_exist(command: list[str], postgres_admin: str) -> None:
    name = f"reachout_missing_{uuid.uuid4().hex[:12]}"
    url = make_url(postgres_admin).set(database=name).render_as_string(hide_password=False)
    message = short_failure(run(command, reachout_env(url)))
    assert f'"{name}"' in message and "does not exist" in message, message
    assert "REACHOUT_DATABASE_URL" in message, message


def test_a_login_the_database_refuses(postgres_admin: str) -> None:
    user = f"nobody_{uuid.uuid4().hex[:12]}"
    url = make_url(postgres_admin).set(username=user, password=None).render_as_string(hide_password=False)
    message = short_failure(run(["serve", "--port", "0"], reachout_env(url)))
    assert "refused the login" in message and user in message, message


def test_a_driver_reachout_does_not_run_on(tmp_path: Path) -> None:
    env = reachout_env("postgresql+psycopg2://postgres:hunter2@127.0.0.1:5432/postgres")
    message = short_failure(run(["serve", "--port", "0"], env))
    assert "postgresql+asyncpg://" in message and "hunter2" not in message, message


def test_a_sqlite_file_in_a_directory_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    message = short_failure(run(["worker"], reachout_env(f"sqlite+aiosqlite:///{missing / 'x.db'}")))
    assert f"the directory {missing} does not exist" in message, message


def test_an_invalid_setting_is_named_without_its_value(sqlite_env: dict[str, str]) -> None:
    message = short_failure(run(["serve", "--port", "0"], {**sqlite_env, "REACHOUT_LEASE_SECONDS": "-7"}))
    assert "REACHOUT_LEASE_SECONDS" in message and "-7" not in message, message


# --- the provisioning file ----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["serve", "apply"])
def test_a_yaml_syntax_error_names_the_file(command: str, tmp_path: Path, sqlite_env: dict[str, str]) -> None:
    broken = tmp_path / "broken.yaml"
    # The line is quoted as written: brackets in it are text, not the terminal's markup.
    broken.write_text("accounts:\n  - id: acme\n   name: [/b] Acme\n")
    args = ["serve", "--config", str(broken), "--port", "0"] if command == "serve" else ["apply", str(broken)]
    message = short_failure(run(args, sqlite_env))
    assert message.startswith(f"{broken}: not valid YAML"), message
    assert "line 3, column 4" in message and "<unicode string>" not in message, message
    assert message.splitlines()[-1].strip() == "name: [/b] Acme", message


def test_a_character_yaml_refuses_is_placed_by_line_and_column(tmp_path: Path) -> None:
    broken = tmp_path / "control.yaml"
    broken.write_text('accounts:\n  - id: "ac\x07me"\n')
    with pytest.raises(ProvisioningError) as refused:
        load(broken)
    message = str(refused.value)
    assert message.startswith(f"{broken}: not valid YAML: unacceptable character #x0007"), message
    assert "line 2, column 12" in message and "<unicode string>" not in message, message


# --- the port -----------------------------------------------------------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_a_busy_port(busy_port: int, tmp_path: Path) -> None:
    database = tmp_path / "reachout.db"
    env = reachout_env(f"sqlite+aiosqlite:///{database}")
    message = short_failure(run(["serve", "--host", "127.0.0.1", "--port", str(busy_port), "--fresh"], env))
    assert f"cannot listen on 127.0.0.1:{busy_port}" in message and "--port" in message, message
    assert not database.exists(), "a server that cannot listen touches no database"


def test_a_busy_metrics_port_names_its_option(busy_port: int, tmp_path: Path, sqlite_template: Path) -> None:
    env = reachout_env(databases.sqlite_copy(sqlite_template, tmp_path))
    message = short_failure(run(["worker", "--metrics-port", str(busy_port)], env))
    assert f"cannot listen on 127.0.0.1:{busy_port}" in message and "--metrics-port" in message, message


# --- starting afresh ----------------------------------------------------------------------------------------


def test_fresh_deletes_the_sqlite_database_first(tmp_path: Path, sqlite_template: Path) -> None:
    url = databases.sqlite_copy(sqlite_template, tmp_path)
    database = Path(make_url(url).database or "")
    with sqlite3.connect(database) as yesterday:
        yesterday.execute("CREATE TABLE yesterdays_messages (body TEXT)")
    database.with_name(database.name + "-wal").write_bytes(b"")
    port = free_port()
    server = ReachoutProcess(
        ["serve", "--fresh", "--no-worker", "--host", "127.0.0.1", "--port", str(port)],
        reachout_env(url),
        tmp_path / "serve.log",
        port,
    )
    try:
        server.start(ready_timeout=COMMAND_TIMEOUT_SECONDS)
    finally:
        server.stop()
    assert f"Starting afresh: deleted {database}" in server.log_path.read_text()
    with sqlite3.connect(database) as today:
        tables = {name for (name,) in today.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "alembic_version" in tables and "yesterdays_messages" not in tables


def test_fresh_leaves_a_postgresql_database_alone() -> None:
    env = reachout_env("postgresql://postgres@127.0.0.1:5432/reachout_prod")
    message = short_failure(run(["serve", "--fresh", "--port", "0"], env))
    assert "--fresh" in message and '"reachout_prod"' in message, message


def test_make_run_fresh_starts_the_demo_afresh() -> None:
    def planned(*assignments: str) -> str:
        make = ["make", "--no-print-directory", "--dry-run", "--always-make", "run", *assignments]
        return subprocess.run(make, cwd=ROOT, capture_output=True, text=True, timeout=30, check=True).stdout

    assert "--fresh" in planned("FRESH=1")
    assert "--fresh" not in planned()
    assert "--fresh" not in planned("FRESH=0")
