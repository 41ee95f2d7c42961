"""The README documents every setting."""
from pathlib import Path

from portal.config import DEFAULTS

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_in_the_readme_table():
    text = README.read_text()
    missing = [key for key in DEFAULTS if f"| `PORTAL_{key}` |" not in text]
    assert missing == []


def test_the_readme_starts_with_the_two_commands():
    text = README.read_text()
    assert text.index("make run") < text.index("## Settings")
    assert text.index("make test") < text.index("## Settings")
