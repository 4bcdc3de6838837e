"""What the three pipeline programs share: running a typer app with the house rules for errors.

Bad input (a :class:`~recsys.errors.RecsysError`) ends the program with exit code 2 and one clear line on stderr,
never a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.console import Console

from recsys.errors import RecsysError
from recsys.native_stderr import filter_tensorflow_start

# TFRS needs Keras 2; this must be set before TensorFlow is first imported (design §10).
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter (CUDA probing, oneDNN)

console = Console()
BACKEND_HELP = "RECSYS_BACKEND: local (embedded, the default) or hopsworks."
HOME_HELP = "RECSYS_HOME: root folder of the embedded backend and of generated data (default ./.recsys)."
DATASET_HELP = "synthetic:PRESET, hm:FOLDER (the Kaggle CSVs), or a dataset spec YAML file (default RECSYS_DATASET)."
SEED_HELP = "Random seed; the same seed gives byte-identical files (default RECSYS_SEED or 42)."
err_console = Console(stderr=True)
# one option for every command that reads the store (typer reads it, never changes it, so commands can share it)
BACKEND_OPTION = typer.Option(None, help=BACKEND_HELP)


def fail(message: str) -> None:
    """Print one error line and exit with code 2."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise SystemExit(2)


def quiet_tensorflow() -> None:
    """Import TensorFlow (its start-up chatter filtered, see below) and keep its Python warnings (retracing,
    SavedModel compile notes) out of the program's output."""
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")


# TensorFlow's native start-up lines ignore TF_CPP_MIN_LOG_LEVEL since it logs through absl: filter them wherever
# the program first imports it.
filter_tensorflow_start()


def run_app(app: typer.Typer, argv: list[str] | None = None) -> None:
    """Run ``app`` and translate :class:`RecsysError` into exit code 2."""
    try:
        app(args=argv, standalone_mode=True)
    except RecsysError as exc:
        fail(str(exc))


def main_guard(app: typer.Typer) -> None:
    """Entry point for ``python -m <pipeline>``."""
    run_app(app, sys.argv[1:])


def make_app(name: str, help_text: str) -> typer.Typer:
    """A pipeline CLI: a command group (even with one command) that also has the ``settings`` command."""
    app = typer.Typer(
        name=name, help=help_text, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
    )

    @app.callback()
    def _group() -> None:
        pass

    add_settings_command(app)
    return app


def add_settings_command(app: typer.Typer) -> None:
    """Give a pipeline CLI the ``settings`` command that prints the effective configuration."""

    @app.command("settings")
    def settings_command(
        backend: str | None = BACKEND_OPTION,
        home: Path | None = typer.Option(None, help=HOME_HELP),
    ) -> None:
        """Print the effective settings (flags, RECSYS_* environment, .env, defaults; secrets masked)."""
        from rich.table import Table

        from recsys.config import load_settings

        table = Table("setting", "value", title="recsys settings")
        for key, value in load_settings(backend=backend, home=home).public_dict().items():
            table.add_row(key, str(value))
        console.print(table)
