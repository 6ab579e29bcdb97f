"""The support desk in production: ``python -m desk serve`` as an operator runs it refuses every
missing, empty, public or short secret and every sandbox-only feature, naming the setting,
before it touches the database; with good secrets there is no demo login and no demo agent.

Expected messages are written from the contract (common/settings.py, docs/configuration.md).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from common.settings import InsecureSettings, Mode
from desk.api import create_app
from desk.config import DeskSettings
from tests.security.production import production_environment, run_module, use_production

GOOD = {
    "RELEND_DESK_TOKEN": "pQ7vK2xL9mR4tW8bN1cF6hJ0dS5gA3zE-1",
    "RELEND_APP_SECRET": "Xw4Tq9Lm2Vc7Rb5Nz1Hd8Kf3Jp6Gs0Ye-2",
    "RELEND_AGENT_SECRET": "Bn6Yh1Uj8Ik3Ol5Pm9Qw2Er7Ty4Ui0Op-3",
    "RELEND_CHANNEL_SECRET": "Cv3Bn8Mq1Wx6Ez4Rt9Ty2Ui7Op5As0Df-4",
    "RELEND_RASA_JWT_SECRET": "Gh5Jk0Lz7Xc2Vb9Nm4Qw1Er6Ty3Ui8Op-5",
    "RELEND_BACKEND_TOKEN": "Rt8Yu3Io6Pa1Sd9Fg4Hj7Kl2Zx5Cv0Bn-6",
}
SECRETS = list(GOOD)


def production_env(tmp_path: Path, **variables: str | None) -> dict[str, str]:
    """The desk in production with good secrets, then ``variables`` on top (None: unset)."""
    return production_environment(
        {**GOOD, "RELEND_DESK_DB_URL": f"sqlite:///{tmp_path / 'desk.db'}"}, **variables)


def serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_module(["desk", "serve"], env)


WEAK = [
    pytest.param(None, "is not set", id="missing"),
    pytest.param("", "is not set", id="empty"),
    pytest.param("   ", "is not set", id="blank"),
    pytest.param("short-but-random-7f3a", "is shorter than 32 bytes", id="short"),
]
SANDBOX_VALUES = {
    "RELEND_DESK_TOKEN": "relend-sandbox-desk-token",
    "RELEND_APP_SECRET": "relend-sandbox-app-secret",
    "RELEND_AGENT_SECRET": "relend-sandbox-agent-secret",
    "RELEND_CHANNEL_SECRET": "relend-sandbox-channel-secret",
    "RELEND_RASA_JWT_SECRET": "relend-sandbox-rasa-jwt-secret",
    "RELEND_BACKEND_TOKEN": "relend-sandbox-token",
}


@pytest.mark.parametrize("name", SECRETS)
@pytest.mark.parametrize(("value", "problem"), WEAK)
def test_production_refuses_a_weak_secret_and_names_it(tmp_path: Path, name, value, problem):
    result = serve(production_env(tmp_path, **{name: value}))

    assert result.returncode == 2, result.stderr
    assert f"{name} {problem}" in result.stderr
    assert "refuses to start in production" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "desk.db").exists()  # refused before touching the database


@pytest.mark.parametrize("name", SECRETS)
def test_production_refuses_the_public_sandbox_value(tmp_path: Path, name):
    result = serve(production_env(tmp_path, **{name: SANDBOX_VALUES[name]}))

    assert result.returncode == 2
    assert f"{name} is the public sandbox value from the repository" in result.stderr
    assert not (tmp_path / "desk.db").exists()


def test_an_unset_mode_is_production(tmp_path: Path):
    result = serve(production_env(tmp_path, RELEND_ENV=None, RELEND_APP_SECRET=None))

    assert result.returncode == 2
    assert "RELEND_APP_SECRET is not set" in result.stderr


@pytest.mark.parametrize(("variables", "problem"), [
    pytest.param({"RELEND_DESK_DEMO_LOGIN": "true"}, "RELEND_DESK_DEMO_LOGIN is on",
                 id="demo-login"),
    pytest.param({"RELEND_DESK_DEMO_AGENTS": "1"}, "RELEND_DESK_DEMO_AGENTS is on",
                 id="demo-agents"),
    pytest.param({"RELEND_AGENT_SECRET": GOOD["RELEND_APP_SECRET"]},
                 "RELEND_APP_SECRET and RELEND_AGENT_SECRET must differ", id="same-secrets"),
    pytest.param({"RELEND_ENV": "prod"}, "RELEND_ENV", id="unknown-mode"),
])
def test_production_refuses_sandbox_features(tmp_path: Path, variables, problem):
    result = serve(production_env(tmp_path, **variables))

    assert result.returncode == 2
    assert problem in result.stderr
    assert "Traceback" not in result.stderr


def test_every_problem_is_named_at_once(tmp_path: Path):
    result = serve(production_env(tmp_path, RELEND_APP_SECRET=None, RELEND_DESK_TOKEN="x",
                                  RELEND_DESK_DEMO_LOGIN="on"))

    for problem in ("RELEND_APP_SECRET is not set", "RELEND_DESK_TOKEN is shorter than",
                    "RELEND_DESK_DEMO_LOGIN is on"):
        assert problem in result.stderr


def test_create_app_refuses_weak_production_settings_too(tmp_path: Path):
    """uvicorn desk.asgi:app (no __main__) goes through create_app: it refuses as well."""
    settings = DeskSettings.construct(**{**DeskSettings(mode=Mode.SANDBOX).dict(),
                                         "mode": Mode.PRODUCTION, "demo_login": False,
                                         "demo_agents": False,
                                         "database_url": f"sqlite:///{tmp_path / 'd.db'}"})
    with pytest.raises(InsecureSettings) as refused:
        create_app(settings)
    assert "RELEND_APP_SECRET is the public sandbox value" in str(refused.value)


def test_good_production_settings_start_without_demo_login_or_demo_agents(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    use_production(monkeypatch, **GOOD, RELEND_DESK_DB_URL=f"sqlite:///{tmp_path / 'desk.db'}")
    migrate = run_module(["desk", "migrate"], production_env(tmp_path))
    assert migrate.returncode == 0, migrate.stderr

    settings = DeskSettings.from_env()
    assert (settings.mode, settings.demo_login, settings.demo_agents) == (
        Mode.PRODUCTION, False, False)
    with TestClient(create_app(settings)) as client:
        login = client.post("/api/demo/login", json={"borrower_id": "demo-eligible"})
        borrowers = client.get("/api/demo/borrowers")
        agent = client.post("/api/agent/login",
                            json={"username": "agent1", "password": "relend-demo"})

    assert login.status_code == borrowers.status_code == 404
    assert "token" not in login.json()
    assert agent.status_code == 401  # no demo agent was created
