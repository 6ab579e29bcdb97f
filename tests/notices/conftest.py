"""The notifier's tests reuse the desk tests' fixtures (tests/desk/conftest.py: a migrated
SQLite or PostgreSQL database, the desk app in-process with a fake Rasa, chats, agents)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

DESK_TESTS = Path(__file__).resolve().parent.parent / "desk"
if str(DESK_TESTS) not in sys.path:
    sys.path.insert(0, str(DESK_TESTS))  # desk_support, fake_backend

_spec = importlib.util.spec_from_file_location("tests_desk_conftest", DESK_TESTS / "conftest.py")
assert _spec is not None and _spec.loader is not None
_desk_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_desk_conftest)

globals().update({name: value for name, value in vars(_desk_conftest).items()
                  if not name.startswith("_") and name not in globals()})
