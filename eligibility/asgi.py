"""ASGI entry point for uvicorn (``eligibility.asgi:app``): settings come from the environment."""

from .api import create_app

app = create_app()
