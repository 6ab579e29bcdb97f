"""``python -m stack.rasa_run run ...``: ``rasa ...`` with ``--jwt-secret`` from the environment.

The stack starts Rasa through this instead of ``rasa run ... --jwt-secret <secret>`` so the
secret that signs Rasa's API tokens is not on the command line, where any local user reads it
(``ps``, ``/proc/<pid>/cmdline``). It appends ``--jwt-secret $RELEND_RASA_JWT_SECRET
--jwt-method HS256`` and refuses to start Rasa's HTTP API without a secret (that would leave
the API open) or, in production, with a short or public one.

Before Rasa starts, it applies the project's run-time patches to Rasa, pinned to Rasa 3.6.21:
the speed patches (stack/rasa_patches.py, listed in its ``PATCHES`` and in
docs/performance.md) and the correctness fixes (stack/rasa_fixes.py, docs/production.md).
"""

from __future__ import annotations

import os
import sys

from common.settings import InsecureSettings, current_mode, refuse_insecure

SECRET_VARIABLE = "RELEND_RASA_JWT_SECRET"


def main() -> int:
    args = sys.argv[1:]
    if any(a in ("--jwt-secret", "--auth-token") or a.startswith(("--jwt-secret=",
                                                                   "--auth-token="))
           for a in args):
        print("pass the JWT secret in RELEND_RASA_JWT_SECRET, not on the command line",
              file=sys.stderr)
        return 2
    secret = os.environ.get(SECRET_VARIABLE, "")
    try:
        refuse_insecure("Rasa's HTTP API", current_mode(), {SECRET_VARIABLE: secret})
    except InsecureSettings as exc:
        print(exc, file=sys.stderr)
        return 2
    if not secret:
        print(f"{SECRET_VARIABLE} is not set: Rasa's HTTP API would be open", file=sys.stderr)
        return 2
    sys.argv = ["rasa", *args, "--jwt-secret", secret, "--jwt-method", "HS256"]
    from rasa.__main__ import main as rasa_main

    from stack import rasa_fixes
    from stack.rasa_patches import apply

    apply()
    rasa_fixes.apply()  # correctness, not speed: always (stack/rasa_fixes.py)
    rasa_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
