"""ASGI entry point for uvicorn (``eligibility.asgi:app``): settings come from the environment.

Settings production must not run with stop the import with their message on stderr and exit
status 2, not a traceback (``python -m eligibility serve`` checks them before uvicorn starts).
"""

import sys

from pydantic import ValidationError

from common.settings import InsecureSettings

from .api import create_app
from .config import invalid_settings_message

try:
    app = create_app()
except InsecureSettings as exc:
    print(exc, file=sys.stderr)
    raise SystemExit(2) from None
except ValidationError as exc:
    print(invalid_settings_message(exc), file=sys.stderr)
    raise SystemExit(2) from None
