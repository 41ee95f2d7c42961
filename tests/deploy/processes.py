"""Helpers for tests that run the portal's real processes (gunicorn, the worker, redis-server)."""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def wait_for(predicate, seconds: float, what: str, output=None):
    """Return ``predicate()``'s first true value, polling for at most ``seconds``; else fail,
    saying what did not happen and, given ``output`` (a callable), the processes' last output
    (the waits are generous: a loaded CI machine is many times slower than a quiet one)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    told = f"\n--- their output (the end) ---\n{output()[-4000:]}" if output else ""
    raise AssertionError(f"{what} within {seconds} s{told}")


def healthz(port: int):
    """/healthz's JSON, or None while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return json.load(r)
    except OSError:
        return None


def stop_group(process: subprocess.Popen) -> None:
    """Kill a process started with start_new_session=True and everything it started."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
