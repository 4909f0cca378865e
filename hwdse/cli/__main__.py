"""``python -m hwdse.cli``: the ``hwdse`` command."""

from hwdse.cli.main import app

app()
