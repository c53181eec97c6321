"""Real reachout processes for tests that kill them: on 127.0.0.1, stopped or SIGKILLed by the test."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import func, select

from reachout.db.engine import Database
from reachout.messaging.models import Message

REACHOUT = Path(sys.executable).parent / "reachout"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ReachoutProcess:
    """One `reachout` process in its own process group, with its output kept in a log file."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    port: int | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_timeout: float = 30.0) -> ReachoutProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(REACHOUT), *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if self.port is not None:
            self._wait_healthy(ready_timeout)
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"reachout exited early:\n{self.log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"reachout not healthy in {timeout}s:\n{self.log_path.read_text()[-4000:]}")

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        """Wait until the process has written `text` to its log (for processes without an HTTP port)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            if text in log:
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"reachout exited early:\n{log[-4000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"{text!r} not logged in {timeout}s:\n{self.log_path.read_text()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL the whole process group: no clean shutdown, no flushing, like a power cut."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def reachout_env(database_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REACHOUT_")}
    env["REACHOUT_DATABASE_URL"] = database_url
    env.update(extra or {})
    return env


def server(
    database_url: str,
    config: Path,
    log_dir: Path,
    *,
    worker: bool = True,
    extra_env: Mapping[str, str] | None = None,
    name: str = "api",
) -> ReachoutProcess:
    port = free_port()
    args = ["serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    if not worker:
        args.append("--no-worker")
    return ReachoutProcess(args, reachout_env(database_url, extra_env), log_dir / f"{name}.log", port)


def worker(
    database_url: str,
    config: Path,
    log_dir: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
    name: str = "worker",
) -> ReachoutProcess:
    return ReachoutProcess(
        ["worker", "--config", str(config)], reachout_env(database_url, extra_env), log_dir / f"{name}.log"
    )


@dataclass
class Cluster:
    """An API process without a worker, and worker processes beside it, on one database."""

    api: ReachoutProcess
    workers: list[ReachoutProcess]


@contextmanager
def running_cluster(
    database_url: str, config: Path, log_dir: Path, *, workers: int, extra_env: Mapping[str, str]
) -> Iterator[Cluster]:
    """Start the API and `workers` workers, each worker polling before the block runs; stop them all after."""
    cluster = Cluster(
        server(database_url, config, log_dir, worker=False, extra_env=extra_env),
        [worker(database_url, config, log_dir, extra_env=extra_env, name=f"w{i}") for i in range(workers)],
    )
    try:
        cluster.api.start()
        for process in cluster.workers:
            process.start()
        for process in cluster.workers:
            process.wait_for_log("worker running")
        yield cluster
    finally:
        for process in (cluster.api, *cluster.workers):
            process.stop()


async def wait_until_delivered(database: Database, total: int, within_seconds: float = 60.0) -> None:
    """Poll until `total` messages are delivered; fails with how many were, if they are not in time."""
    deadline = time.monotonic() + within_seconds
    delivered = 0
    while time.monotonic() < deadline:
        async with database.read() as session:
            query = select(func.count()).select_from(Message).where(Message.status == "delivered")
            delivered = (await session.execute(query)).scalar_one()
        if delivered == total:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{delivered} of {total} messages delivered after {within_seconds} s")
