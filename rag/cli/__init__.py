"""The `rag` command: a thin shell over the library, a module per command group. Human
output by default, `--json` for scripts; errors are one line on stderr and exit code 2."""

from rag.cli import ask, docs, evaluate, index, serve  # noqa: F401 - they register commands
from rag.cli.common import app


def main() -> None:
    app()


__all__ = ["app", "main"]
