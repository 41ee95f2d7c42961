"""gunicorn's settings for `make run`, deploy/portal.service and deploy/compose.yaml.

gunicorn reads ./gunicorn.conf.py from its working directory (the repository); its command line
and GUNICORN_CMD_ARGS override what is set here, e.g. GUNICORN_CMD_ARGS='--bind 0.0.0.0:8000'.
"""
import os


def default_workers() -> int:
    """gunicorn's rule of thumb, two processes per core plus one, at most 8."""
    return min(2 * len(os.sched_getaffinity(0)) + 1, 8)


# Processes; WEB_CONCURRENCY (gunicorn's own variable) overrides the default.
workers = int(os.environ.get("WEB_CONCURRENCY") or default_workers())
# Threads per process: a long response (an export of 100,000 users) never stalls its process or
# trips the worker timeout, which counts the process's own heartbeat, not the request.
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
# No gunicornc control socket: one per user by default, which two servers on a box would share.
control_socket_disable = True
# Access log on stdout (the terminal under `make run`, the journal under systemd).
accesslog = "-"


def when_ready(server):
    """Say when per-address rate limits count per process rather than across all of them."""
    storage = os.environ.get("PORTAL_RATELIMIT_STORAGE_URI", "memory://")
    if server.cfg.workers > 1 and storage.strip('"').startswith("memory://"):
        server.log.warning(
            "%d processes keep their own per-address rate limits (PORTAL_RATELIMIT_STORAGE_URI "
            "is memory://); point it at a shared store such as redis:// to count them together",
            server.cfg.workers,
        )
