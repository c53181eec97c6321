"""The HTTP server's bounds, against a real `reachout serve`: clients that misbehave are answered and closed.

One server for the module, with short timeouts set through the environment (so no test waits long) and a
small connection limit. Misbehaving clients are raw sockets.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support import databases, processes
from tests.support.provisioning import API_KEY, CONNECTOR, USER, standard_document

pytestmark = pytest.mark.slow

TIMEOUT = 0.8  # both the header and the body timeout
MAX_CONNECTIONS = 8
MAX_HEADER_BYTES = 16_384  # the default
LIMITS = {
    "REACHOUT_HTTP_HEADER_TIMEOUT_SECONDS": str(TIMEOUT),
    "REACHOUT_HTTP_BODY_TIMEOUT_SECONDS": str(TIMEOUT),
    "REACHOUT_HTTP_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    "REACHOUT_HTTP_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
}
MiB = 1_048_576
SEND_HEADERS = (
    f"X-PolyAi-Auth-Token: {API_KEY}\r\nX-TOKEN-ID: {CONNECTOR}\r\nContent-Type: application/json\r\n"
)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[processes.ReachoutProcess]:
    directory = tmp_path_factory.mktemp("server-bounds")
    config = directory / "reachout.yaml"
    config.write_text(yaml.safe_dump(standard_document(rate_limit=1_000_000)))
    database_url = databases.sqlite_copy(sqlite_template, directory)
    api = processes.server(database_url, config, directory, worker=False, extra_env=LIMITS)
    try:
        yield api.start()
    finally:
        api.stop()


def connect(server: processes.ReachoutProcess, timeout: float = 5.0) -> socket.socket:
    assert server.port is not None
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


class Reader:
    """HTTP/1.1 responses read off one socket, one after another (pipelined ones included)."""

    def __init__(self, sock: socket.socket) -> None:
        self._file = sock.makefile("rb")

    def response(self) -> tuple[int, dict[str, str], bytes]:
        """The next response's status, headers (names lowercased) and body; status 0 if the server closed."""
        status_line = self._file.readline()
        if not status_line:
            return 0, {}, b""
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := self._file.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = self._file.read(int(headers.get("content-length", "0")))
        return status, headers, body

    def at_end(self) -> bool:
        """Whether the server closed the connection (nothing more to read)."""
        try:
            return self._file.read(1) == b""
        except ConnectionResetError:
            return True


def outbound_head(length: int, extra: str = "") -> bytes:
    """A `POST /v1/outbound-sms` request's line and headers, declaring a body of `length` bytes."""
    line = "POST /v1/outbound-sms HTTP/1.1\r\nHost: test\r\n"
    return f"{line}{SEND_HEADERS}{extra}Content-Length: {length}\r\n\r\n".encode()


def outbound(body: bytes) -> bytes:
    return outbound_head(len(body)) + body


def greeting(user: str) -> bytes:
    return json.dumps({"message": "Hello", "user_number": user}).encode()


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def healthy(server: processes.ReachoutProcess) -> int:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        return Reader(sock).response()[0]


# --- headers -----------------------------------------------------------------------------------------------


def test_endless_headers_do_not_grow_the_server(server: processes.ReachoutProcess) -> None:
    assert server.process is not None
    pid = server.process.pid
    rss_before, peak_before = rss_bytes(pid), rss_bytes(pid, "VmHWM")
    outcomes: list[str] = []

    def endless_header() -> None:
        chunk = b"a" * MiB
        with connect(server, timeout=5) as sock:
            try:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Endless: ")
                for _ in range(64):  # 64 MiB of one header line, never ended
                    sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server closed on us: what it answered, if anything, is still to read
            try:
                status = Reader(sock).response()[0]
            except ConnectionResetError:
                status = 0
            except TimeoutError:
                status = -1
            outcomes.append({431: "431", 0: "closed", -1: "no answer"}.get(status, f"status {status}"))

    threads = [threading.Thread(target=endless_header) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    grew = rss_bytes(pid) - rss_before
    peaked = rss_bytes(pid, "VmHWM") - peak_before
    assert grew < 40 * MiB and peaked < 40 * MiB, (
        f"RSS grew {grew / MiB:.0f} MiB, peak {peaked / MiB:.0f} MiB"
    )
    assert len(outcomes) == 4 and set(outcomes) <= {"431", "closed"}, outcomes
    assert healthy(server) == 200


def test_headers_over_the_bound_get_431_and_a_close(server: processes.ReachoutProcess) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: " + b"b" * MAX_HEADER_BYTES + b"\r\n\r\n"
        )
        reader = Reader(sock)
        status, headers, body = reader.response()
        assert (status, headers["connection"]) == (431, "close")
        assert "detail" in json.loads(body)
        assert reader.at_end()


def test_headers_within_the_bound_and_a_body_larger_than_it_in_one_write_are_served(
    server: processes.ReachoutProcess,
) -> None:
    # The header count must stop where the headers end, even when the body arrives in the same read.
    with connect(server) as sock:
        reader = Reader(sock)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: " + b"b" * 12_000 + b"\r\n\r\n")
        assert reader.response()[0] == 200
        body = json.dumps({"message": "Hello", "user_number": USER, "padding": "p" * 100_000}).encode()
        sock.sendall(outbound(body))
        status, _, answer = reader.response()
        assert status != 431, answer
        assert status in (202, 400), answer


def test_a_request_stalled_mid_header_is_closed_at_the_header_timeout(
    server: processes.ReachoutProcess,
) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: te")
        started = time.monotonic()
        reader = Reader(sock)
        status, _, body = reader.response()
        waited = time.monotonic() - started
        assert status in (408, 0)
        if status == 408:
            assert "detail" in json.loads(body)
        assert reader.at_end()
        assert TIMEOUT * 0.8 < waited < TIMEOUT + 2, waited


def test_a_connection_that_sends_nothing_is_closed_at_the_header_timeout(
    server: processes.ReachoutProcess,
) -> None:
    with connect(server) as sock:
        started = time.monotonic()
        reader = Reader(sock)
        assert reader.response()[0] in (408, 0)
        assert reader.at_end()
        assert TIMEOUT * 0.8 < time.monotonic() - started < TIMEOUT + 2


def test_the_header_timeout_is_total_not_per_byte(server: processes.ReachoutProcess) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"s" * 100 + b"\r\n\r\n"
    with connect(server) as sock:
        started = time.monotonic()
        answered_after = None
        for byte in request:  # a byte every 0.1 s: each well within the timeout, all of them far beyond it
            if select.select([sock], [], [], 0)[0]:  # the server answered, or closed
                answered_after = time.monotonic() - started
                break
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                answered_after = time.monotonic() - started
                break
            time.sleep(0.1)
        assert answered_after is not None, "the whole request went out a byte at a time"
        assert TIMEOUT * 0.8 < answered_after < TIMEOUT + 1, answered_after
        reader = Reader(sock)
        try:
            status = reader.response()[0]
        except ConnectionResetError:
            status = 0
        assert status in (408, 0)


# --- bodies ------------------------------------------------------------------------------------------------


def test_a_stalled_body_gets_408_at_the_body_timeout(server: processes.ReachoutProcess) -> None:
    with connect(server) as sock:
        sock.sendall(outbound_head(100) + b'{"message"')
        started = time.monotonic()
        reader = Reader(sock)
        status, headers, body = reader.response()
        waited = time.monotonic() - started
        assert (status, headers["connection"]) == (408, "close")
        assert "detail" in json.loads(body)
        assert reader.at_end()
        assert TIMEOUT * 0.8 < waited < TIMEOUT + 2, waited


def test_a_body_in_slow_chunks_each_within_the_body_timeout_is_served(
    server: processes.ReachoutProcess,
) -> None:
    body = greeting("+14155552001")
    pieces = [body[i : i + 12] for i in range(0, len(body), 12)]
    assert len(pieces) >= 4
    with connect(server) as sock:
        sock.sendall(outbound_head(len(body)))
        started = time.monotonic()
        for piece in pieces:
            time.sleep(TIMEOUT / 2)
            sock.sendall(piece)
        assert time.monotonic() - started > TIMEOUT * 1.5  # longer than one timeout in all
        assert Reader(sock).response()[0] == 202


def test_a_10_mb_post_from_urllib_gets_413_not_a_reset(server: processes.ReachoutProcess) -> None:
    request = urllib.request.Request(
        f"{server.base_url}/v1/outbound-sms",
        data=b" " * (10 * MiB),
        headers={"X-PolyAi-Auth-Token": API_KEY, "X-TOKEN-ID": CONNECTOR, "Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413
    assert "detail" in json.loads(refused.value.read())


@pytest.mark.parametrize(
    ("framing", "what"),
    [(b"2\r\n{}\r\n0\r\nX-Trailer: ", "an endless trailer"), (b"2;ext=", "an endless chunk extension")],
)
def test_endless_chunk_framing_gets_431_without_growing_the_server(
    server: processes.ReachoutProcess, framing: bytes, what: str
) -> None:
    """httptools keeps a trailer as it keeps a header: past the header bound, the framing is refused."""
    assert server.process is not None
    pid = server.process.pid
    peak_before = rss_bytes(pid, "VmHWM")
    with connect(server, timeout=5) as sock:
        sock.sendall(
            f"POST /v1/outbound-sms HTTP/1.1\r\nHost: test\r\n{SEND_HEADERS}"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
            + framing
        )
        try:
            for _ in range(32):  # 32 MiB of it, never ended
                sock.sendall(b"a" * MiB)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            status = Reader(sock).response()[0]
        except ConnectionResetError:
            status = 0
    assert status in (431, 0), f"{what}: {status}"
    assert rss_bytes(pid, "VmHWM") - peak_before < 40 * MiB, what
    assert healthy(server) == 200


def test_an_oversized_chunked_body_gets_413(server: processes.ReachoutProcess) -> None:
    chunk = b"c" * 65_536
    with connect(server, timeout=30) as sock:
        sock.sendall(
            f"POST /v1/outbound-sms HTTP/1.1\r\nHost: test\r\n{SEND_HEADERS}"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        for _ in range(32):  # 2 MiB, written in full before anything is read
            sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        reader = Reader(sock)
        status, headers, body = reader.response()
        assert (status, headers["connection"]) == (413, "close")
        assert "detail" in json.loads(body)


def test_expect_100_continue_with_a_large_length_gets_413_without_continue(
    server: processes.ReachoutProcess,
) -> None:
    with connect(server) as sock:
        sock.sendall(outbound_head(10 * MiB, extra="Expect: 100-continue\r\n"))
        started = time.monotonic()
        sock.settimeout(TIMEOUT / 2)  # answered at once, long before the body timeout
        received = b""
        while chunk := sock.recv(65_536):
            received += chunk
        assert time.monotonic() - started < TIMEOUT
    assert received.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in received
    assert "detail" in json.loads(received.partition(b"\r\n\r\n")[2])


def test_a_length_past_the_discard_bound_is_answered_at_once(server: processes.ReachoutProcess) -> None:
    with connect(server) as sock:
        sock.sendall(outbound_head(100 * MiB))
        sock.settimeout(TIMEOUT / 2)
        status, _, body = Reader(sock).response()
    assert status == 413
    assert "detail" in json.loads(body)


# --- connections -------------------------------------------------------------------------------------------


def test_connections_past_the_limit_get_503_and_the_server_serves_again(
    server: processes.ReachoutProcess,
) -> None:
    held: list[socket.socket] = []
    try:
        for _ in range(MAX_CONNECTIONS):
            sock = connect(server)
            held.append(sock)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")  # so the server has surely taken it
            assert Reader(sock).response()[0] == 200
        with connect(server) as extra:
            reader = Reader(extra)
            status, headers, body = reader.response()
            assert (status, headers["connection"]) == (503, "close")
            assert "detail" in json.loads(body)
            assert reader.at_end()
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 2
    while True:
        try:
            if healthy(server) == 200:
                break
        except ConnectionResetError:
            pass
        assert time.monotonic() < deadline, "the server did not serve again once the connections closed"
        time.sleep(0.05)


# --- ordinary requests -------------------------------------------------------------------------------------


def test_a_keep_alive_connection_serves_several_requests(server: processes.ReachoutProcess) -> None:
    with connect(server) as sock:
        reader = Reader(sock)
        for i in range(3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            assert reader.response()[0] == 200
            sock.sendall(outbound(greeting(f"+1415555210{i}")))
            assert reader.response()[0] == 202


def test_two_pipelined_requests_on_one_connection_are_both_answered(
    server: processes.ReachoutProcess,
) -> None:
    with connect(server) as sock:
        sock.sendall(outbound(greeting("+14155552200")) + b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        reader = Reader(sock)
        assert reader.response()[0] == 202
        assert reader.response()[0] == 200
