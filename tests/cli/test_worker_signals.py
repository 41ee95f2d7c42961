"""The worker's stop flag under a burst of signals (Ctrl-C in `make run` sends INT and TERM).

A `threading.Event` set from a signal handler deadlocks when the signal lands while the main thread
holds the event's lock inside `wait()`: the worker then never stopped, and serve.sh waited on it
forever (tests/deploy/test_serve.py timed out in CI).
"""
import os
import signal
import subprocess
import sys
import time

from tests.deploy.processes import ROOT

CHILD = """
import sys, time
from portal.cli import stop_on_signals
stop = stop_on_signals()
print("ready", flush=True)
deadline = time.monotonic() + 3
while time.monotonic() < deadline:   # the worker's loop, as tight as it gets
    stop.wait(0)
print("set" if stop.is_set() else "not set", flush=True)
"""


def test_a_burst_of_term_and_int_never_deadlocks_the_stop_flag():
    child = subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        end = time.monotonic() + 2
        sent = 0
        while time.monotonic() < end and child.poll() is None:
            os.kill(child.pid, signal.SIGTERM if sent % 2 else signal.SIGINT)
            sent += 1
            time.sleep(0.0005)
        out, _ = child.communicate(timeout=20)
    finally:
        child.kill()
    assert child.returncode == 0
    assert out.strip() == "set"
    assert sent > 100
