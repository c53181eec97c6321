"""`reachout phone` on a pseudo-terminal: it shows the greeting, texts what is typed, shows the answer."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support import processes

pytestmark = pytest.mark.slow

DEMO = Path(__file__).parents[1] / "demo.yaml"
USER = "+14155551234"
GREETING = "Hi Jane, your appointment is confirmed for tomorrow at 2pm."
REST_OF_GREETING = "Reply to this message if you need to reschedule."
ANSWER = "Of course \u2014 I\u2019ve rescheduled your appointment to 3pm tomorrow. See you then!"
FAST = {
    "REACHOUT_DEBOUNCE_SECONDS": "0.2",
    "REACHOUT_WORKER_POLL_SECONDS": "0.05",
    "REACHOUT_SANDBOX_SENT_AFTER_SECONDS": "0.05",
    "REACHOUT_SANDBOX_DELIVERED_AFTER_SECONDS": "0.1",
}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """A process on a pseudo-terminal, and everything it has printed so far (ANSI codes removed)."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            command, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, close_fds=True
        )
        os.close(slave)
        self.output = ""

    def wait_for(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{text!r} did not appear; the terminal shows:\n{self.output}")
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                with contextlib.suppress(OSError):
                    self.output += ANSI.sub("", os.read(self.master, 65536).decode(errors="replace"))

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def interrupt(self, timeout: float = 10.0) -> int:
        """Ctrl-C: SIGINT to the process group, as a terminal sends it; the exit status, once it has quit."""
        os.killpg(self.process.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                with contextlib.suppress(OSError):
                    self.output += ANSI.sub("", os.read(self.master, 65536).decode(errors="replace"))
        if self.process.poll() is None:
            raise TimeoutError(f"still running {timeout}s after Ctrl-C; the terminal shows:\n{self.output}")
        with contextlib.suppress(OSError):  # what it printed as it quit
            while select.select([self.master], [], [], 0)[0]:
                self.output += ANSI.sub("", os.read(self.master, 65536).decode(errors="replace"))
        return self.process.returncode

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        os.close(self.master)


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_the_phone_plays_the_reference_conversation(database_url: str, tmp_path: Path) -> None:
    server = processes.server(database_url, DEMO, tmp_path, extra_env=FAST)
    server.start()
    env = processes.reachout_env(database_url) | {"COLUMNS": "200", "TERM": "xterm-256color"}
    phone = Terminal([str(processes.REACHOUT), "phone", USER, "--server", server.base_url], env)
    try:
        phone.wait_for("type a message")
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            response = await client.post(
                "/v1/outbound-sms",
                json={
                    "message": GREETING + " Reply to this message if you need to reschedule.",
                    "user_number": USER,
                },
                headers={"X-PolyAi-Auth-Token": "rk_demo_key_123456", "X-TOKEN-ID": "conn_demo_clinic"},
            )
            assert response.status_code == 202
        phone.wait_for(GREETING)
        phone.type("Can I move it to 3pm instead?")
        phone.wait_for(ANSWER)
        assert phone.interrupt() == 0
        assert "Traceback" not in phone.output
    finally:
        phone.close()
        server.stop()


def test_with_no_server_it_says_so_in_one_line_and_ctrl_c_says_what_was_not_sent() -> None:
    url = f"http://127.0.0.1:{processes.free_port()}"  # nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith("REACHOUT_")}
    command = [str(processes.REACHOUT), "phone", USER, "--server", url, "--to", "+14155550101"]
    phone = Terminal(command, env | {"COLUMNS": "200"})
    try:
        phone.wait_for(f"(the server at {url} cannot be reached; still trying)")
        phone.wait_for("type a message")
        phone.type("Can I move it to 3pm instead?")
        phone.wait_for(f"(held: it is sent when the server at {url} answers again)")
        assert phone.interrupt() == 0
        assert "Traceback" not in phone.output
        assert phone.output.count("cannot be reached;") == 1
        assert f"(not sent: 1 text, as the server at {url} cannot be reached)" in phone.output
    finally:
        phone.close()
