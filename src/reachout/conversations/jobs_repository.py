"""All SQL of conversation jobs: the durable timers of a conversation, leased through `kit.jobs`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.conversations.models import ConversationJob, JobKind
from reachout.conversations.schemas import LeasedJob
from reachout.db.base import table_of
from reachout.db.upsert import insert_for
from reachout.kit.jobs import repository as jobs
from reachout.kit.jobs.leases import Lease

JOBS = jobs.JobTable(
    ConversationJob,
    ConversationJob.id,
    ConversationJob.due_at,
    ConversationJob.attempts,
    ConversationJob.lease_owner,
    ConversationJob.lease_expires_at,
)


async def schedule(
    session: AsyncSession, conversation_id: str, kind: JobKind, due_at: datetime, now: datetime
) -> None:
    """Make a conversation's job of this kind fire at `due_at`: created, or moved with a fresh count.

    A move ends any lease on the job, so the worker holding it applies nothing (a newer text moved the turn).
    """
    fresh = {"due_at": due_at, "attempts": 0, **jobs.unleased(JOBS)}
    statement = (
        insert_for(session, table_of(ConversationJob))
        .values(conversation_id=conversation_id, kind=kind, created_at=now, **fresh)
        .on_conflict_do_update(index_elements=["conversation_id", "kind"], set_=fresh)
    )
    await session.execute(statement)


async def cancel(session: AsyncSession, conversation_id: str, kinds: Sequence[JobKind]) -> None:
    """Drop a conversation's pending jobs of these kinds."""
    await session.execute(
        delete(ConversationJob).where(
            ConversationJob.conversation_id == conversation_id, ConversationJob.kind.in_(list(kinds))
        )
    )


async def claim(session: AsyncSession, now: datetime, lease: Lease, limit: int) -> list[LeasedJob]:
    """Lease due jobs: no other worker takes them until the lease ends."""
    due = await jobs.lock_due(
        session, JOBS.due, now, limit, columns=(ConversationJob.id, ConversationJob.due_at)
    )
    due_at = {row.id: row.due_at for row in due}  # the lease moves it: kept to tell how late the job fired
    rows = await jobs.lease(
        session,
        JOBS,
        list(due_at),
        lease,
        returning=(
            ConversationJob.id,
            ConversationJob.conversation_id,
            ConversationJob.kind,
            ConversationJob.attempts,
        ),
    )
    return [
        LeasedJob(row.id, row.conversation_id, JobKind(row.kind), row.attempts, lease, due_at[row.id])
        for row in sorted(rows, key=lambda row: row.id)
    ]


async def still_leased(session: AsyncSession, job: LeasedJob) -> bool:
    """Lock the job if its lease still holds it (not finished, moved or claimed again by another worker)."""
    return job.id in await jobs.held(session, JOBS, [job.id], job.lease.token)


async def retry(session: AsyncSession, job: LeasedJob, due_at: datetime) -> None:
    """Let a job the lease holds come due again at `due_at`."""
    await jobs.release(session, JOBS, {job.id: due_at})


async def finish(session: AsyncSession, job: LeasedJob) -> None:
    """Delete a job whose work is done, if its lease still holds it."""
    await jobs.finish(session, JOBS, [job.id], job.lease.token)
