"""Which Python `make` takes: the newest python3.1x (3.11-3.13) that runs, else python3, or PYTHON=;
one line saying what to install when there is none."""
import shutil
import subprocess
import sys

import pytest

from tests.deploy.processes import ROOT

BROKEN_SHIM = '#!/bin/sh\necho "pyenv: $(basename "$0"): command not found" >&2\nexit 127\n'


@pytest.fixture
def bin_dir(tmp_path):
    """A PATH with make and the shell tools the Makefile calls, and no Python."""
    path = tmp_path / "bin"
    path.mkdir()
    for tool in ("make", "bash", "sh", "id", "rm", "ln"):
        (path / tool).symlink_to(shutil.which(tool))
    return path


def executable(path, text):
    path.write_text(text)
    path.chmod(0o755)


def make_python(bin_dir, tmp_path, *args):
    """`make python` in an empty folder: the Python it takes and its venv, or the error."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    result = subprocess.run(["make", "-s", "-f", str(ROOT / "Makefile"), "python", *args],
                            cwd=work, env=env, capture_output=True, text=True, timeout=60)
    return result.returncode, (result.stdout + result.stderr).strip().splitlines()


def this_python_version():
    return "%d.%d" % sys.version_info[:2]


def test_the_newest_python_that_runs_wins_over_shims_that_do_not(bin_dir, tmp_path):
    executable(bin_dir / "python3.13", BROKEN_SHIM)  # a pyenv shim of a version not active
    executable(bin_dir / "python3.12", BROKEN_SHIM)
    (bin_dir / "python3.11").symlink_to(sys.executable)
    (bin_dir / "python3").symlink_to(sys.executable)
    status, lines = make_python(bin_dir, tmp_path)
    assert status == 0, lines
    version = this_python_version()
    assert lines == [f"python3.11 (Python {version}) in .venv-{version}"]


def test_python3_is_the_last_resort(bin_dir, tmp_path):
    (bin_dir / "python3").symlink_to(sys.executable)
    status, lines = make_python(bin_dir, tmp_path)
    assert status == 0 and lines == [f"python3 (Python {this_python_version()}) in .venv-"
                                     f"{this_python_version()}"]


def test_no_python_says_in_one_line_what_to_install(bin_dir, tmp_path):
    executable(bin_dir / "python3.13", BROKEN_SHIM)
    status, lines = make_python(bin_dir, tmp_path)
    assert status != 0
    assert len(lines) == 1, lines
    assert "No Python 3.11-3.13 found: install python3.13" in lines[0]
    assert "PYTHON=/path/to/python3.x" in lines[0]


def test_python_too_old_is_named(bin_dir, tmp_path):
    old = tmp_path / "python3.10"
    executable(old, "#!/bin/sh\necho 3.10\n")
    status, lines = make_python(bin_dir, tmp_path, f"PYTHON={old}")
    assert status != 0 and len(lines) == 1, lines
    assert f"No Python 3.11-3.13 found ({old} is 3.10)" in lines[0]


def test_python_given_wins(bin_dir, tmp_path):
    (bin_dir / "python3.13").symlink_to(sys.executable)
    status, lines = make_python(bin_dir, tmp_path, f"PYTHON={sys.executable}")
    assert status == 0 and lines[0].startswith(f"{sys.executable} (Python "), lines

