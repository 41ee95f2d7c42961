#!/usr/bin/env bash
# The README's two commands in a fresh clone of HEAD on a PATH whose only Python is the one given:
# `make run` until /healthz answers, then Ctrl-C (both gunicorn and the worker must stop), then
# `make test` (SQLite). CI runs it with the newest Python the machine has.
#
#   .ci/fresh-clone.sh /path/to/python3.13 [pytest arguments...]
#
# Exits non-zero when a step fails; prints which.
set -euo pipefail
python=$1; shift
repo=$(cd "$(dirname "$0")/.." && pwd)
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
work=$(mktemp -d /tmp/portal-fresh.XXXXXX)
server_pid=
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL -- "-$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

git clone --quiet "$repo" "$work/clone"
cd "$work/clone"

# A PATH of everything the machine's PATH has, but no Python and no pyenv, plus python$version.
mkdir "$work/bin"
IFS=: read -r -a path_dirs <<<"$PATH"
for dir in "${path_dirs[@]}"; do
    case $dir in *pyenv*|"") continue ;; esac
    for tool in "$dir"/*; do
        name=${tool##*/}
        case $name in python*|pip*|pydoc*|idle*|2to3*|pyenv*) continue ;; esac
        [ -x "$tool" ] && [ ! -e "$work/bin/$name" ] && ln -s "$tool" "$work/bin/$name"
    done
done
ln -s "$python" "$work/bin/python$version"
export PATH=$work/bin
for other in python python3 python3.11 python3.12 python3.13; do
    if [ "$other" != "python$version" ] && command -v "$other" >/dev/null; then
        echo "fresh-clone: $other is still on PATH" >&2; exit 1
    fi
done
echo "fresh-clone: $(git log --oneline -1 | cut -c1-60)… in $work/clone; the only Python on PATH: python$version ($python)"

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "=== make run (port $port)"
# Job control: make runs in a process group of its own and does not ignore SIGINT, as in a terminal.
set -m
make run PORT="$port" </dev/null >"$work/run.log" 2>&1 &
server_pid=$!
set +m
healthy=
for _ in $(seq 600); do           # the venv and its packages first: up to 5 minutes
    if [ -x ".venv-$version/bin/python" ] && ".venv-$version/bin/python" -c \
        'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
        "http://127.0.0.1:$port/healthz" 2>/dev/null; then healthy=1; break; fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.5
done
if [ -z "$healthy" ]; then
    cat "$work/run.log"; echo "fresh-clone: make run never answered /healthz" >&2; exit 1
fi
grep -q "Outbox\|No SMTP server configured" "$work/run.log" ||
    sleep 3    # let the worker say what it does before it is stopped
kill -INT -- "-$server_pid"       # Ctrl-C: the terminal signals the whole process group
stopped=
for _ in $(seq 120); do kill -0 "$server_pid" 2>/dev/null || { stopped=1; break; }; sleep 0.5; done
grep -E "serve.sh|Listening at|Using worker|Shutting down|healthz|SMTP|Outbox" "$work/run.log" || true
if [ -z "$stopped" ] || ! grep -q "^serve.sh: stopped" "$work/run.log" ||
    pgrep -f "$work/clone/.venv-$version/bin/" >/dev/null; then
    cat "$work/run.log"; echo "fresh-clone: Ctrl-C did not stop make run cleanly" >&2; exit 1
fi
server_pid=
echo "fresh-clone: make run served /healthz on Python $version and stopped cleanly on Ctrl-C"

echo "=== make test"
status=0
make test PYTEST_ARGS="$*" </dev/null || status=$?
exit "$status"
