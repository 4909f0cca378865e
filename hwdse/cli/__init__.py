"""The ``hwdse`` command: one module per command group (:mod:`~hwdse.cli.main` holds the typer app)."""

from hwdse.cli.main import app

__all__ = ["app"]
