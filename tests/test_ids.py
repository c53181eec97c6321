"""Row ids are time-ordered, so inserts append to their indexes instead of landing on random pages."""

from __future__ import annotations

import re
import uuid

from reachout.conversations.schemas import new_conversation_id
from reachout.messaging.schemas import new_message_id


def test_message_ids_are_uuids_in_creation_order() -> None:
    ids = [new_message_id() for _ in range(10_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 7 for i in ids[:100])


def test_conversation_ids_are_prefixed_and_in_creation_order() -> None:
    ids = [new_conversation_id() for _ in range(10_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"convo_[0-9a-f]{24}", i) for i in ids)
