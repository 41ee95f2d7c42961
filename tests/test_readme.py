"""The README documents every setting and every command."""
import re
from pathlib import Path

import click
from flask.cli import ScriptInfo
from flask.cli import cli as flask_cli

from portal.config import DEFAULTS

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_in_the_readme_table():
    text = README.read_text()
    missing = [key for key in DEFAULTS if f"| `PORTAL_{key}` |" not in text]
    assert missing == []


def test_the_readme_says_one_more_device_logs_out_the_first():
    row = next(line for line in README.read_text().splitlines()
               if line.startswith("| `PORTAL_DEFAULT_DEVICE_LIMIT` |"))
    assert "logs out the device signed in first" in row


def test_the_readme_starts_with_the_two_commands():
    text = README.read_text()
    assert text.index("make run") < text.index("## Settings")
    assert text.index("make test") < text.index("## Settings")


def flask_commands(app) -> tuple[set[str], set[str]]:
    """Return what `flask --help` offers: the portal's commands down to their sub-commands, and
    the top-level names of Flask's and Flask-Migrate's own (documented as one row each)."""
    # The `flask` entry point's group: Flask's own commands plus the app's.
    ctx = click.Context(flask_cli, info_name="flask", obj=ScriptInfo(create_app=lambda: app))
    ours, theirs = set(), set()

    def walk(command: click.Command, path: str, ctx: click.Context) -> None:
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), f"{path} {name}".strip(), ctx)
        else:
            ours.add(path)

    for name in flask_cli.list_commands(ctx):
        command = flask_cli.get_command(ctx, name)
        if command.callback is not None and command.callback.__module__.startswith("portal"):
            walk(command, name, ctx)
        else:
            theirs.add(name)
    return ours, theirs


def readme_commands() -> set[str]:
    """Return every `flask …` command named in the first column of the README's command table."""
    text = README.read_text()
    section = text[text.index("## Command line"):]
    section = section[: section.index("\n## ")]
    named = set()
    for line in section.splitlines():
        if line.startswith("| `flask"):
            first_cell = line.split(" | ")[0]
            named.update(re.findall(r"`flask ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)*)", first_cell))
    return named


def test_the_readme_command_table_lists_every_command_flask_help_shows(app):
    ours, theirs = flask_commands(app)
    named = readme_commands()
    assert {"purge", "users restore", "users import", "db", "run"} <= ours | theirs
    assert sorted(ours - named) == []
    assert sorted(name for name in theirs if not any(
        n == name or n.startswith(name + " ") for n in named)) == []
    # And nothing in the table that `flask` does not have.
    assert sorted(n for n in named if n not in ours and n.split()[0] not in theirs) == []
