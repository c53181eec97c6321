"""The collector as a server or worker tunes it once started: the start-up heap frozen, young objects
collected in larger batches."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from reachout.app import YOUNG_GENERATION_THRESHOLD, tune_garbage_collector


@pytest.fixture
def _restore_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


@pytest.mark.usefixtures("_restore_collector")
def test_the_start_up_heap_is_frozen_and_young_objects_wait_for_a_larger_batch() -> None:
    gc.unfreeze()
    _, middle, old = gc.get_threshold()
    tune_garbage_collector()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, middle, old)
    assert (
        YOUNG_GENERATION_THRESHOLD > 700
    )  # Python's default: collections of a batch's objects, again and again
