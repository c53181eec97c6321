"""A stderr that refuses every line: reachout's logs configured on a stream, then the stream closed."""

from __future__ import annotations

import sys
from pathlib import Path

from reachout import logs


def log_to_a_closed_stream(directory: Path) -> None:
    """Configure reachout's logs on a file in `directory`, then close it, as a broken or full pipe refuses
    writes; the caller resets structlog afterwards."""
    stream = (directory / "stderr.log").open("w")
    original = sys.stderr
    sys.stderr = stream
    try:
        logs.configure("INFO")
    finally:
        sys.stderr = original
    stream.close()
