"""What a route can ask for: the desk's context and settings, a database session, and who is
calling (an agent, a supervisor, the action server). Those that do no I/O are ``async`` (no
trip to the thread pool); those that read the database are not.

The session is one per request, closed when the route has answered. A route that waits on
something slow between two uses of it (Rasa, a password hash) calls ``session.close()`` first:
that gives the connection back, and the session begins afresh when it is used again.
Sockets live for long: they take short sessions from ``DeskContext.sessions`` instead.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from . import auth
from .auth import InvalidToken, verify
from .config import DeskSettings
from .context import DeskContext
from .models import Agent
from .service import DeskError


async def get_context(connection: HTTPConnection) -> DeskContext:
    return connection.app.state.desk


Context = Annotated[DeskContext, Depends(get_context)]


async def get_settings(context: Context) -> DeskSettings:
    return context.settings


Settings = Annotated[DeskSettings, Depends(get_settings)]


def get_session(context: Context) -> Iterator[Session]:
    with context.sessions() as session:
        yield session


DbSession = Annotated[Session, Depends(get_session)]

# no automatic 403: a missing or malformed header is the desk's own 401 below
bearer_scheme = HTTPBearer(auto_error=False)


async def bearer_token(credentials: Annotated[HTTPAuthorizationCredentials | None,
                                        Depends(bearer_scheme)]) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; empty without one."""
    return credentials.credentials.strip() if credentials is not None else ""


BearerToken = Annotated[str, Depends(bearer_token)]


@dataclass(frozen=True)
class AgentIdentity:
    """An agent as the agents table says now (not as an old token remembers)."""

    id: int
    name: str
    role: str

    @property
    def supervisor(self) -> bool:
        return self.role == "supervisor"


def agent_for_token(session: Session, keys: list[str], token: str,
                    audience: str = auth.AGENT) -> AgentIdentity | None:
    """The agent a token belongs to, if the token is valid and not revoked."""
    try:
        claims = verify(token, keys, audience)
        agent_id = int(claims["sub"])
    except (InvalidToken, KeyError, TypeError, ValueError):
        return None
    agent = session.get(Agent, agent_id)
    if agent is None or not agent.active or agent.token_version != claims.get("ver"):
        return None
    return AgentIdentity(agent.id, agent.display_name, agent.role)


def current_agent(context: Context, session: DbSession, token: BearerToken) -> AgentIdentity:
    agent = agent_for_token(session, context.agent_keys, token)
    if agent is None:
        raise DeskError(401, "unauthorized", "Log in to the console first.")
    return agent


CurrentAgent = Annotated[AgentIdentity, Depends(current_agent)]


async def current_supervisor(agent: CurrentAgent) -> AgentIdentity:
    if not agent.supervisor:
        raise DeskError(403, "forbidden", "Only a supervisor can do this.")
    return agent


Supervisor = Annotated[AgentIdentity, Depends(current_supervisor)]


async def service_token(settings: Settings, token: BearerToken) -> None:
    """The action server's token (``RELEND_DESK_TOKEN``), for the ``/internal`` routes."""
    if not token or not hmac.compare_digest(token.encode(), settings.internal_token.encode()):
        raise DeskError(401, "unauthorized", "A valid service token is required.")
