"""Everything one desk app holds, built once by ``create_app`` and kept on ``app.state.desk``;
routes reach it through the dependencies in desk/deps.py."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from .config import DeskSettings
from .demo_borrowers import DemoDirectory
from .guards import LoginThrottle, RateLimiter
from .hub import Hub
from .rasa_client import RasaClient
from .records import RecordsSource
from .turns import Turns


@dataclass
class DeskContext:
    settings: DeskSettings
    sessions: sessionmaker[Session]
    hub: Hub
    rasa: RasaClient
    turns: Turns
    demo: DemoDirectory  # the sandbox's demo borrowers (tests put a fixed list here)
    records: RecordsSource  # a borrower's loans, repayments, reminders (the backend's)
    borrower_rate: RateLimiter  # borrower messages, per borrower
    frame_rate: RateLimiter  # any chat frame, per borrower
    login_by_name: LoginThrottle
    login_by_address: LoginThrottle

    @property
    def app_keys(self) -> list[str]:
        """What verifies a borrower token: the app's secret, and the previous one in a rotation."""
        return [self.settings.app_secret, self.settings.app_secret_previous]

    @property
    def agent_keys(self) -> list[str]:
        return [self.settings.agent_secret, self.settings.agent_secret_previous]
