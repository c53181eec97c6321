"""The conversation worker: fires due conversation jobs — the agent's turns and the inactivity timers.

A job is leased in one short transaction (`kit.jobs`: its `due_at` pushed past the lease, its attempt counted,
the lease's token stamped), worked outside any transaction (an agent may take seconds), and applied in a
second transaction that first checks the token is still on it: otherwise a newer text moved the turn (it will
be answered with the newer text included), or the lease expired and another worker took over. So each job's
effect — a reply queued, a warning sent, a conversation ended — is committed exactly once, and a crash
anywhere means the job fires again later.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.agents.base import AgentTurn, ConversationView, EndReason, Line, Speaker
from reachout.agents.registry import AgentRegistry, kind_of
from reachout.compliance import service as compliance
from reachout.compliance.service import AutoReply
from reachout.conversations import event_log, jobs_repository, replies, repository
from reachout.conversations.models import AnsweredBy, Conversation, ConversationStatus, JobKind
from reachout.conversations.schemas import ConversationChange, LeasedJob
from reachout.conversations.service import end
from reachout.db.engine import Database
from reachout.delivery.channels import Channel
from reachout.events.types import EventType
from reachout.kit import metrics
from reachout.kit.clock import Clock
from reachout.kit.jobs.leases import Lease
from reachout.kit.jobs.retry import RetryStrategy
from reachout.logs import describe_error, get_logger
from reachout.messaging import service as messaging
from reachout.messaging.models import Direction
from reachout.messaging.schemas import ConversationText, MessageView
from reachout.tenancy import service as tenancy
from reachout.tenancy.schemas import ProjectView

log = get_logger("conversations")


@dataclass(frozen=True)
class TurnPolicy:
    """How long a worker holds a job, how long an agent may think, how it is retried when it fails, and how
    many jobs a worker takes and works at once."""

    lease_seconds: float = 30.0
    agent_timeout_seconds: float = 10.0
    retry: RetryStrategy = field(default_factory=lambda: RetryStrategy(2.0, max_attempts=3, cap_seconds=60.0))
    batch_size: int = 20
    concurrency: int = 10
    auto_reply_window_seconds: float = 600.0  # at most one fallback text per person within it


@dataclass(frozen=True)
class _TurnInput:
    conversation: Conversation
    project: ProjectView
    view: ConversationView
    pending: tuple[MessageView, ...]


class ConversationWorker:
    """Fires due conversation jobs; any number of workers may run against one database (a worker runner)."""

    name = "conversations"

    def __init__(
        self, database: Database, agents: AgentRegistry, clock: Clock, policy: TurnPolicy, *, owner: str
    ) -> None:
        self._database = database
        self._agents = agents
        self._clock = clock
        self._policy = policy
        self._owner = owner
        self._slots = asyncio.Semaphore(policy.concurrency)
        self.batch_size = policy.batch_size

    async def run_once(self) -> int:
        """Lease the due jobs and fire them, up to `concurrency` at once; returns how many were leased."""
        now = self._clock.now()
        lease = Lease.take(self._owner, now + timedelta(seconds=self._policy.lease_seconds))
        async with self._database.write.begin() as session:
            jobs = await jobs_repository.claim(session, now, lease, self._policy.batch_size)
        metrics.observe(metrics.instruments().timer_lag_seconds, _lags(jobs, now))
        if jobs:
            log.debug(
                "conversation jobs leased",
                jobs=len(jobs),
                lease=lease.token,
                lease_until=lease.until.isoformat(),
            )
        await asyncio.gather(*(self._fire(job) for job in jobs))
        return len(jobs)

    async def _fire(self, job: LeasedJob) -> None:
        async with self._slots:
            try:
                if job.kind == JobKind.TURN:
                    await self._turn(job)
                else:
                    await self._timer(job)
            except Exception:  # one job's bug must not stop the others; its lease expires and it runs again
                log.exception(
                    "conversation job failed", job=job.id, kind=job.kind, conversation_id=job.conversation_id
                )

    # --- the agent's turn -------------------------------------------------------------------------------

    async def _turn(self, job: LeasedJob) -> None:
        async with self._database.read() as session:
            prepared = await self._prepare(session, job)
        if prepared is None:
            await self._finish(job)
            return
        asked = time.perf_counter()
        try:
            with metrics.agent_turn():
                turn = await asyncio.wait_for(self._ask_agent(prepared), self._policy.agent_timeout_seconds)
        except Exception as error:  # the agent raised, timed out or is misconfigured: the text is never lost
            await self._agent_failed(job, prepared, error)
            return
        latency_ms = round((time.perf_counter() - asked) * 1000, 1)
        async with self._database.write.begin() as session:
            if not await jobs_repository.still_leased(session, job):
                log.debug("agent turn dropped: a newer text moved it", conversation_id=job.conversation_id)
                return
            await self._apply(session, prepared, turn)
            await jobs_repository.finish(session, job)
        log.info(
            "agent turn",
            conversation_id=prepared.conversation.id,
            project_id=prepared.project.id,
            agent=kind_of(prepared.conversation.agent or prepared.project.agent),
            latency_ms=latency_ms,
            texts=len(prepared.pending),
            replied=bool(turn.reply),
            ended=turn.end,
            attempt=job.attempts,
        )

    async def _prepare(self, session: AsyncSession, job: LeasedJob) -> _TurnInput | None:
        conversation = await repository.get(session, job.conversation_id)
        if conversation is None or conversation.status != ConversationStatus.OPEN:
            return None
        project = await tenancy.project(session, conversation.project_id)
        if project is None:
            return None
        messages = await messaging.conversation_messages(session, conversation.id)
        pending = tuple(
            m
            for m in messages
            if m.direction == Direction.INBOUND
            and (conversation.answered_through is None or m.created_at > conversation.answered_through)
        )
        if not pending:
            return None
        view = ConversationView(
            conversation_id=conversation.id,
            project_id=conversation.project_id,
            channel=Channel(conversation.channel),
            agent_number=conversation.agent_number,
            user_number=conversation.user_number,
            history=tuple(_line(m) for m in messages),
            metadata=dict(conversation.metadata_ or {}),
            variables=dict(conversation.variables or {}),
            state=dict(conversation.agent_state or {}),
        )
        return _TurnInput(conversation, project, view, pending)

    async def _ask_agent(self, prepared: _TurnInput) -> AgentTurn:
        config = prepared.conversation.agent or prepared.project.agent
        async with self._database.read() as session:
            agent = await self._agents.agent_for(session, config, prepared.view.state)
        view = prepared.view
        variables: dict[str, Any] = dict(view.variables)
        if not view.state:  # the start hook runs once, before the agent's first turn
            started = await agent.start(replace(view, history=_before(view.history, prepared.pending)))
            variables.update(started.variables)
            view = replace(view, variables=variables, state=dict(started.state))
        turn = await agent.respond(view, "\n".join(m.body for m in prepared.pending))
        variables.update(turn.variables)
        return replace(turn, variables=variables)

    async def _apply(
        self, session: AsyncSession, prepared: _TurnInput, turn: AgentTurn, kind: AutoReply | None = None
    ) -> None:
        conversation = await repository.get(session, prepared.conversation.id, lock=True)
        if conversation is None or conversation.status != ConversationStatus.OPEN:
            return
        now = self._clock.now()
        if turn.reply:
            await replies.queue_reply(
                session,
                _text(conversation, turn.reply),
                now,
                kind=kind,
                window_seconds=self._policy.auto_reply_window_seconds,
            )
        await repository.update(
            session,
            conversation.id,
            {
                "variables": dict(turn.variables),
                "agent_state": dict(turn.state),
                "answered_through": max(m.created_at for m in prepared.pending),
                "last_activity_at": now,
            },
        )
        if turn.end is not None:
            await end(session, conversation.id, turn.end, now)
        else:
            await self._restart_inactivity(session, conversation.id, prepared.project, now)

    async def _agent_failed(self, job: LeasedJob, prepared: _TurnInput, error: Exception) -> None:
        now = self._clock.now()
        async with self._database.write.begin() as session:
            if not await jobs_repository.still_leased(session, job):
                return
            retry_at = self._policy.retry.next_attempt(job.attempts, now)
            if retry_at is not None:
                log.warning(
                    "agent turn failed; retrying",
                    conversation_id=prepared.conversation.id,
                    project_id=prepared.project.id,
                    job=job.id,
                    attempt=job.attempts,
                    delay_seconds=round((retry_at - now).total_seconds(), 3),
                    retry_at=retry_at.isoformat(),
                    error=describe_error(error),
                )
                await jobs_repository.retry(session, job, retry_at)
                return
            log.error(
                "agent turn failed for good; fallback text sent",
                conversation_id=prepared.conversation.id,
                project_id=prepared.project.id,
                attempts=job.attempts,
                error=describe_error(error),
                reason=EndReason.AGENT_FAILED,
            )
            details = {"attempts": job.attempts, "error": repr(error)[:500]}
            failed = ConversationChange(
                EventType.CONVERSATION_AGENT_FAILED, prepared.conversation.id, now, details
            )
            await event_log.record(session, [failed], now)
            fallback = AgentTurn(
                reply=prepared.project.conversations.fallback_text, state=prepared.view.state
            )
            await self._apply(
                session, prepared, replace(fallback, variables=prepared.view.variables), AutoReply.FALLBACK
            )
            await jobs_repository.finish(session, job)

    # --- inactivity -------------------------------------------------------------------------------------

    async def _timer(self, job: LeasedJob) -> None:
        now = self._clock.now()
        async with self._database.write.begin() as session:
            fired = await self._fire_timer(session, job, now)
        if fired is not None:
            project_id, outcome = fired
            log.info(
                "conversation timer fired",
                conversation_id=job.conversation_id,
                project_id=project_id,
                timer=job.kind,
                outcome=outcome,
            )

    async def _fire_timer(
        self, session: AsyncSession, job: LeasedJob, now: datetime
    ) -> tuple[str | None, str] | None:
        """Fire an inactivity timer: its conversation's project and what it did; None if it did not fire."""
        if not await jobs_repository.still_leased(session, job):
            return None
        await jobs_repository.finish(session, job)
        conversation = await repository.get(session, job.conversation_id, lock=True)
        if conversation is None or conversation.status != ConversationStatus.OPEN:
            return None, "conversation_closed"
        project = await tenancy.project(session, conversation.project_id)
        if project is None:
            return None, "project_gone"
        settings = project.conversations.inactivity
        opted_out = await compliance.is_opted_out(session, project.id, conversation.user_number)
        if opted_out:
            await end(session, conversation.id, EndReason.OPTED_OUT, now)
            return project.id, "ended_opted_out"
        if job.kind == JobKind.WARN:
            await replies.queue_reply(session, _text(conversation, settings.warning_message), now)
            warned = ConversationChange(EventType.CONVERSATION_WARNING_SENT, conversation.id, now)
            await event_log.record(session, [warned], now)
            expire_at = now + timedelta(seconds=settings.end_after_warning_seconds)
            await jobs_repository.schedule(session, conversation.id, JobKind.EXPIRE, expire_at, now)
            return project.id, "warning_queued"
        # A conversation nobody answers ends as quietly as it went: no text the project did not send.
        if settings.timeout_message is not None and conversation.answered_by == AnsweredBy.AGENT:
            await replies.queue_reply(session, _text(conversation, settings.timeout_message), now)
        await end(session, conversation.id, EndReason.INACTIVITY, now)
        return project.id, "ended_inactivity"

    async def _restart_inactivity(
        self, session: AsyncSession, conversation_id: str, project: ProjectView, now: datetime
    ) -> None:
        warn_at = now + timedelta(seconds=project.conversations.inactivity.warn_after_seconds)
        await jobs_repository.cancel(session, conversation_id, (JobKind.EXPIRE,))
        await jobs_repository.schedule(session, conversation_id, JobKind.WARN, warn_at, now)

    async def _finish(self, job: LeasedJob) -> None:
        async with self._database.write.begin() as session:
            if await jobs_repository.still_leased(session, job):
                await jobs_repository.finish(session, job)


def _lags(jobs: Sequence[LeasedJob], now: datetime) -> list[tuple[str, float]]:
    """How late each job was claimed, by kind: a worker that keeps up claims jobs as they come due."""
    return [(job.kind, (now - job.due_at).total_seconds()) for job in jobs if job.due_at is not None]


def _line(message: MessageView) -> Line:
    speaker = Speaker.USER if message.direction == Direction.INBOUND else Speaker.AGENT
    return Line(speaker, message.body, message.created_at)


def _before(history: Sequence[Line], pending: Sequence[MessageView]) -> tuple[Line, ...]:
    """The history as it stood when the conversation opened: before the texts now being answered."""
    first = min(m.created_at for m in pending)
    return tuple(line for line in history if line.at < first)


def _text(conversation: Conversation, body: str) -> ConversationText:
    return ConversationText(
        conversation.project_id,
        conversation.id,
        Channel(conversation.channel),
        conversation.agent_number,
        conversation.user_number,
        body,
    )
