"""ASGI entry point for uvicorn (``desk.asgi:app``): settings come from the environment."""

from .api import create_app

app = create_app()
