"""The explicit agent registry: a project's `agent:` setting names one kind, and its factory builds the agent.

agent: {pathway: appointment-reminder}            # the latest provisioned version
agent: {pathway: appointment-reminder, version: 2}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.agents.base import Agent, AgentError, AgentKind

# Given the agent setting and the conversation's agent state (where an agent may pin, say, a version).
AgentFactory = Callable[[AsyncSession, Mapping[str, Any], Mapping[str, Any]], Awaitable[Agent]]


def kind_of(config: Mapping[str, Any]) -> AgentKind:
    """The kind of agent a setting names; AgentError when it names none or several."""
    kinds = [kind for kind in AgentKind if kind.value in config]
    if len(kinds) != 1:
        expected = ", ".join(kind.value for kind in AgentKind)
        raise AgentError(f"agent setting {dict(config)!r} must name exactly one of: {expected}")
    return kinds[0]


class AgentRegistry:
    """The agents this process can run, one factory per kind."""

    def __init__(self, factories: Mapping[AgentKind, AgentFactory]) -> None:
        self._factories = dict(factories)

    async def agent_for(
        self, session: AsyncSession, config: Mapping[str, Any], state: Mapping[str, Any]
    ) -> Agent:
        """The agent a setting describes, ready to take a turn in a conversation with this agent state."""
        kind = kind_of(config)
        factory = self._factories.get(kind)
        if factory is None:
            raise AgentError(f"agent kind '{kind}' is not available in this process")
        return await factory(session, config, state)
