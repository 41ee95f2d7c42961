#!/usr/bin/env bash
# What `make run` serves with: gunicorn (settings in gunicorn.conf.py) and the background worker
# (`flask worker`: jobs such as CSV imports and bulk actions, and the outbox when a mail server
# is set) side by side. Ctrl-C or TERM stops both: gunicorn finishes the requests in flight, the
# worker its current job or round. When either ends on its own the other is stopped too, except
# that a worker ending cleanly (exit 0) leaves gunicorn serving.
#
#   scripts/serve.sh VENV HOST PORT
set -uo pipefail
venv=$1 host=$2 port=$3

"$venv/bin/gunicorn" --bind "$host:$port" wsgi:app &
server=$!
"$venv/bin/flask" --app wsgi worker &
worker=$!
echo "serve.sh: gunicorn (pid $server) on http://$host:$port, worker (pid $worker); Ctrl-C stops both"

stopping=
stop() {
    stopping=1
    kill -TERM "$server" "$worker" 2>/dev/null
}
trap stop INT TERM

running() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
status=0
while running "$server" || running "$worker"; do
    # shellcheck disable=SC2046  # the pids of the processes still running
    wait -n $(running "$server" && echo "$server") $(running "$worker" && echo "$worker")
    ended=$?
    if [ -n "$stopping" ]; then continue; fi         # a signal: wait until both have finished
    if ! running "$server"; then
        echo "serve.sh: gunicorn ended (exit $ended); stopping the worker" >&2
        status=$ended; stop
    elif ! running "$worker"; then
        if [ "$ended" != 0 ]; then
            echo "serve.sh: the worker failed (exit $ended); stopping gunicorn" >&2
            status=$ended; stop
        fi
        worker=
    fi
done
if [ -n "$stopping" ] && [ "$status" = 0 ]; then echo "serve.sh: stopped"; fi
exit "$status"
