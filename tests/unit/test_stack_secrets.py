"""`python -m stack up` in production refuses weak service tokens before starting anything."""

from __future__ import annotations

import pytest

from common.settings import InsecureSettings
from stack.config import StackConfig

STRONG = {
    "RELEND_CHANNEL_SECRET": "c" * 40,
    "RELEND_RASA_JWT_SECRET": "j" * 40,
    "RELEND_ACTION_TOKEN": "a" * 40,
    "RELEND_BACKEND_TOKEN": "b" * 40,
    "RELEND_DESK_TOKEN": "d" * 40,
}


def production(monkeypatch: pytest.MonkeyPatch, **overrides: str | None) -> StackConfig:
    monkeypatch.setenv("RELEND_ENV", "production")
    for name, value in {**STRONG, **overrides}.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return StackConfig.from_env()


def test_strong_tokens_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    production(monkeypatch).check()


@pytest.mark.parametrize("name", ["RELEND_BACKEND_TOKEN", "RELEND_DESK_TOKEN"])
@pytest.mark.parametrize(("value", "problem"), [
    (None, "is not set"),
    ("short-token", "is shorter than 32 bytes"),
])
def test_weak_service_tokens_are_refused(monkeypatch: pytest.MonkeyPatch, name: str,
                                         value: str | None, problem: str) -> None:
    with pytest.raises(InsecureSettings) as refused:
        production(monkeypatch, **{name: value}).check()
    assert f"{name} {problem}" in str(refused.value)


@pytest.mark.parametrize(("name", "public"), [
    ("RELEND_BACKEND_TOKEN", "relend-sandbox-token"),
    ("RELEND_DESK_TOKEN", "relend-sandbox-desk-token"),
])
def test_the_repository_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str,
                                           public: str) -> None:
    with pytest.raises(InsecureSettings) as refused:
        production(monkeypatch, **{name: public}).check()
    assert f"{name} is the public sandbox value" in str(refused.value)


def test_the_sandbox_keeps_its_public_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELEND_ENV", "sandbox")
    for name in STRONG:
        monkeypatch.delenv(name, raising=False)
    config = StackConfig.from_env()
    config.check()
    assert (config.backend_token, config.desk_token) == ("relend-sandbox-token",
                                                         "relend-sandbox-desk-token")
