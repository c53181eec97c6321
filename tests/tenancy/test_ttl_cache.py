"""The directory's cache: concurrent misses share one load, and a failed load does not fail the others."""

from __future__ import annotations

import asyncio

import pytest

from reachout.tenancy.service import _TtlCache


async def test_concurrent_misses_share_one_load() -> None:
    cache: _TtlCache[str, int] = _TtlCache(ttl_seconds=60)
    loads = 0
    release = asyncio.Event()

    async def load() -> int:
        nonlocal loads
        loads += 1
        await release.wait()
        return 42

    waiting = [asyncio.create_task(cache.get("key", load)) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiting) == [42] * 20
    assert loads == 1
    assert await cache.get("key", load) == 42 and loads == 1  # and then it is cached


async def test_a_failed_shared_load_is_retried_by_each_waiter() -> None:
    cache: _TtlCache[str, str] = _TtlCache(ttl_seconds=60)
    started = asyncio.Event()

    async def failing() -> str:
        started.set()
        await asyncio.sleep(0)
        raise ConnectionError("database went away")

    async def working() -> str:
        return "fresh"

    first = asyncio.create_task(cache.get("key", failing))
    await started.wait()
    second = asyncio.create_task(cache.get("key", working))
    with pytest.raises(ConnectionError):
        await first
    assert await second == "fresh"


async def test_a_cancelled_loader_does_not_cancel_the_waiters() -> None:
    cache: _TtlCache[str, str] = _TtlCache(ttl_seconds=60)
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(3600)
        return "never"

    async def quick() -> str:
        return "fresh"

    first = asyncio.create_task(cache.get("key", slow))
    await started.wait()
    second = asyncio.create_task(cache.get("key", quick))
    await asyncio.sleep(0)
    first.cancel()  # the client of the first request went away
    assert await second == "fresh"
