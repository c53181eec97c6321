"""What the records built for every message of a batch share.

Those records are NamedTuples rather than frozen dataclasses: as immutable, and four times cheaper to build,
which counts because most are built inside the write transaction (docs/architecture.md, "Why batches").
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

EMPTY_MAPPING: Final[Mapping[str, Any]] = MappingProxyType({})
"""A record's details, metadata or agent when it has none: one shared mapping, so read-only."""
