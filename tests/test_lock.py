"""The lock files pin every dependency that pyproject.toml declares, with hashes.

After adding or changing a dependency in pyproject.toml, run `make lock`."""
import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")
PYTHONS = ("3.11", "3.12", "3.13")


def read_lock(name: str) -> dict[str, list[tuple[str, str | None, int]]]:
    """Package name -> its pins: (version, marker or None, number of hashes)."""
    pins: dict[str, list[tuple[str, str | None, int]]] = {}
    current = None
    for line in (ROOT / name).read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = [match[2], match[3], 0]
            pins.setdefault(canonicalize_name(match[1]), []).append(current)
        elif line.strip().startswith("--hash=sha256:") and current is not None:
            current[2] += 1
    return {key: [tuple(pin) for pin in value] for key, value in pins.items()}


def environments():
    """Marker environments of this machine, with each supported Python version."""
    for version in PYTHONS:
        yield {"python_version": version, "python_full_version": f"{version}.0"}


def unmet(requirements: list[str], lock: dict) -> list[str]:
    """The requirements (and the extras' requirements) that the lock does not satisfy."""
    problems = []
    for text in requirements:
        requirement = Requirement(text)
        for env in environments():
            if requirement.marker and not requirement.marker.evaluate(env):
                continue
            pins = [
                version
                for version, marker, _ in lock.get(canonicalize_name(requirement.name), [])
                if marker is None or Marker(marker).evaluate(env)
            ]
            if not pins:
                problems.append(f"{requirement} (Python {env['python_version']}): not in the lock")
            elif not all(requirement.specifier.contains(v, prereleases=True) for v in pins):
                problems.append(f"{requirement} (Python {env['python_version']}): locked {pins}")
            else:
                problems += unmet(extra_requirements(requirement), lock)
    return sorted(set(problems))


def extra_requirements(requirement: Requirement) -> list[str]:
    """What the requirement's extras add (psycopg[binary] -> psycopg-binary), per installed metadata."""
    if not requirement.extras:
        return []
    found = []
    for text in metadata.requires(requirement.name) or []:
        extra_requirement = Requirement(text)
        marker = extra_requirement.marker
        if marker and any(marker.evaluate({"extra": extra}) for extra in requirement.extras):
            if not marker.evaluate({"extra": ""}):
                extra_requirement.marker = None
                found.append(str(extra_requirement))
    return found


RUNTIME = PYPROJECT["dependencies"]
TEST = PYPROJECT["optional-dependencies"]["test"]


@pytest.mark.parametrize(
    ("lock_file", "requirements"),
    [("requirements.lock", RUNTIME), ("requirements-test.lock", RUNTIME + TEST)],
)
def test_the_lock_pins_every_declared_dependency(lock_file, requirements):
    assert unmet(requirements, read_lock(lock_file)) == [], "run `make lock`"


@pytest.mark.parametrize("lock_file", ["requirements.lock", "requirements-test.lock"])
def test_every_locked_package_has_hashes(lock_file):
    pins = read_lock(lock_file)
    assert len(pins) > 20
    assert [name for name, entries in pins.items() if any(n == 0 for *_, n in entries)] == []


def test_the_runtime_lock_takes_the_test_locks_versions():
    runtime, test = read_lock("requirements.lock"), read_lock("requirements-test.lock")
    differing = {
        name: (pins, test.get(name))
        for name, pins in runtime.items()
        if {v for v, *_ in pins} - {v for v, *_ in test.get(name, [])}
    }
    assert differing == {}


def test_the_checker_notices_a_dependency_missing_from_the_lock():
    lock = read_lock("requirements-test.lock")
    assert unmet(["no-such-package~=1.0"], lock) == [
        f"no-such-package~=1.0 (Python {version}): not in the lock" for version in PYTHONS
    ]
    flask_version = lock["flask"][0][0]
    assert unmet([f"Flask>{flask_version}"], lock)[0].startswith(f"Flask>{flask_version}")
    del lock["psycopg-binary"]
    assert unmet(["psycopg[binary]~=3.3.9"], lock)[0].startswith("psycopg-binary")


def test_requires_python_covers_the_locked_pythons():
    spec = Requirement(f"python{PYPROJECT['requires-python']}").specifier
    assert [v for v in PYTHONS if not spec.contains(f"{v}.0")] == []
    assert not spec.contains("3.14.0") and not spec.contains("3.10.0")
