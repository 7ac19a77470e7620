"""The HTTP face of rag: a FastAPI app over the same pipeline as the CLI."""

from api.main import create_app

__all__ = ["create_app"]
