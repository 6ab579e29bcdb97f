"""The production desk needs a real backend service token (``RELEND_BACKEND_TOKEN``): the agent
console shows each case's borrower's loans, repayments and reminder setting, read from the
eligibility backend with it (desk/records.py). Like the desk's other secrets (docs/security.md):
set, at least 32 bytes, not a value from this repository -- or ``python -m desk serve`` exits
with status 2 naming it, before it touches the database.

Expected messages are written from the contract (common/settings.py, docs/configuration.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from desk.api import create_app
from desk.config import DeskSettings
from tests.security.production import production_environment, run_module, use_production

GOOD = {
    "RELEND_DESK_TOKEN": "Zq4Wn7Xs2Ed9Rc5Tf1Vg8Yb3Hn6Uj0Mk-a",
    "RELEND_APP_SECRET": "Lo9Pk2Mj5Nh8Bg1Vf4Cd7Xs0Za3Qw6Er-b",
    "RELEND_AGENT_SECRET": "Ty2Ui5Op8As1Df4Gh7Jk0Lz3Xc6Vb9Nm-c",
    "RELEND_CHANNEL_SECRET": "Qa1Ws4Ed7Rf0Tg3Yh6Uj9Ik2Ol5Pz8Xc-d",
    "RELEND_RASA_JWT_SECRET": "Mn3Bv6Cx9Zl2Kj5Hg8Fd1Sa4Po7Iu0Yt-e",
}
BACKEND_TOKEN = "Wq5Er8Ty1Ui4Op7As0Df3Gh6Jk9Lz2Xc-f"


def serve(tmp_path: Path, token: str | None) -> tuple[int, str]:
    env = production_environment({**GOOD, "RELEND_DESK_DB_URL":
                                  f"sqlite:///{tmp_path / 'desk.db'}"},
                                 RELEND_BACKEND_TOKEN=token)
    result = run_module(["desk", "serve"], env)
    return result.returncode, result.stderr


@pytest.mark.parametrize(("token", "problem"), [
    pytest.param(None, "RELEND_BACKEND_TOKEN is not set", id="missing"),
    pytest.param("", "RELEND_BACKEND_TOKEN is not set", id="empty"),
    pytest.param("x" * 31, "RELEND_BACKEND_TOKEN is shorter than 32 bytes", id="31-bytes"),
    # the backend's public sandbox token, and its public back-office one
    pytest.param("relend-sandbox-token", "RELEND_BACKEND_TOKEN is the public sandbox value",
                 id="sandbox-token"),
    pytest.param("relend-sandbox-backoffice-token",
                 "RELEND_BACKEND_TOKEN is the public sandbox value", id="backoffice-token"),
])
def test_the_production_desk_refuses_a_weak_backend_token(tmp_path: Path, token: str | None,
                                                          problem: str) -> None:
    status, stderr = serve(tmp_path, token)

    assert status == 2, stderr
    assert "the support desk refuses to start in production" in stderr
    assert problem in stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "desk.db").exists()  # refused before touching the database


def test_with_a_real_backend_token_the_production_desk_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    migrate = run_module(["desk", "migrate"], production_environment(
        {**GOOD, "RELEND_DESK_DB_URL": url, "RELEND_BACKEND_TOKEN": BACKEND_TOKEN}))
    assert migrate.returncode == 0, migrate.stderr
    use_production(monkeypatch, **GOOD, RELEND_DESK_DB_URL=url,
                   RELEND_BACKEND_TOKEN=BACKEND_TOKEN)

    settings = DeskSettings.from_env()
    with TestClient(create_app(settings)) as client:
        health = client.get("/health")

    assert settings.backend_token == BACKEND_TOKEN  # what the console's records are read with
    assert health.status_code == 200
