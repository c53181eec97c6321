"""CPU per accepted `POST /v1/outbound-sms`, in process: the app driven through ASGI, no sockets, no wrk.

A steadier measure than `accept.py` for comparing two versions of the code (its runs vary by a few per cent,
against 10-20 % for a loaded HTTP server on a shared machine); it leaves out the HTTP server's own work. Run
two source trees in turn and compare the medians:

    .venv/bin/python bench/in_process.py                      # this tree
    PYTHONPATH=/tmp/other/src .venv/bin/python bench/in_process.py   # a `git worktree` of another commit

It starts the app on a fresh SQLite database with bench/provision.yaml (log lines at info go to a file, as
under `reachout serve` with its stderr redirected), warms it up, then sends `--requests` greetings, each to
a different recipient, `--concurrency` at a time, and prints CPU and wall time per accept and the time the
garbage collector took. `--profile` prints cProfile's top functions (slower; not a figure to report).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
MESSAGE = (
    "Hi Jane, your appointment is confirmed for tomorrow at 2pm. "  # as bench/post.lua sends
    "Reply to this message if you need to reschedule."
)
HEADERS = [
    (b"content-type", b"application/json"),
    (b"x-polyai-auth-token", b"rk_bench_key_0123456789"),
    (b"x-token-id", b"conn_bench"),
    (b"host", b"127.0.0.1"),
]


class Collections:
    """Time spent in the garbage collector, from its callbacks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0
        gc.callbacks.append(self._noted)

    def _noted(self, phase: str, _: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started


async def send_one(app: Any, n: int) -> None:
    body = json.dumps({"message": MESSAGE, "user_number": f"+1415555{100 + n % 9900:04d}"}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/outbound-sms",
        "raw_path": b"/v1/outbound-sms",
        "query_string": b"",
        "root_path": "",
        "headers": [*HEADERS, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never leaves
        raise AssertionError("unreachable")

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    if statuses != [202]:
        raise SystemExit(f"request {n} was answered {statuses}, not 202")


async def measure(args: argparse.Namespace, out: Any) -> None:
    from reachout.app import create_app
    from reachout.config import Settings

    app = create_app(Settings(config=BENCH / "provision.yaml"), run_worker=False)
    lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = asyncio.Event()

    async def lifespan_send(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()

    await lifespan.put({"type": "lifespan.startup"})
    serving = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, lifespan.get, lifespan_send)
    )
    await started.wait()
    numbers = iter(range(10**9))

    async def client(count: int) -> None:
        for _ in range(count):
            await send_one(app, next(numbers))

    await asyncio.gather(*(client(500 // args.concurrency + 1) for _ in range(args.concurrency)))  # warm-up
    each = args.requests // args.concurrency
    collections = Collections()
    profile = cProfile.Profile() if args.profile else None
    cpu, wall = time.process_time(), time.perf_counter()
    if profile is not None:
        profile.enable()
    await asyncio.gather(*(client(each) for _ in range(args.concurrency)))
    if profile is not None:
        profile.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    sent = each * args.concurrency
    print(
        f"cpu {1e6 * cpu / sent:.1f} us/accept  wall {1e6 * wall / sent:.1f} us/accept "
        f"({sent / wall:,.0f}/s)  gc {1e6 * collections.seconds / sent:.1f} us/accept",
        file=out,
    )
    if profile is not None:
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(40)
        print(text.getvalue(), file=out)
    await lifespan.put({"type": "lifespan.shutdown"})
    await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000, help="Measured accepts (default 6000).")
    parser.add_argument(
        "--concurrency", type=int, default=64, help="Requests in flight (default 64, as wrk -c64)."
    )
    parser.add_argument("--profile", action="store_true", help="Print cProfile's top functions.")
    args = parser.parse_args()
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    with tempfile.TemporaryDirectory(prefix="reachout-in-process-") as tmp:
        os.environ["REACHOUT_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp}/reachout.db"
        log = os.open(f"{tmp}/stderr.log", os.O_WRONLY | os.O_CREAT)
        os.dup2(log, sys.stderr.fileno())  # before reachout configures its logs on stderr
        os.dup2(log, sys.stdout.fileno())
        from reachout import logs

        logs.configure("INFO")
        import uvloop

        uvloop.run(measure(args, out))


if __name__ == "__main__":
    main()
