# shellcheck shell=bash
# Finding the Pythons CI runs the suite on.
#
#   source .ci/python.sh
#   find_python 3.11        # prints the path of a runnable python3.11, or nothing
#   newest_python           # prints the newest runnable python3.1x the project supports
#
# Looks on PATH first (a pyenv shim of a version that is not active does not run, so it does not
# count), then in pyenv's versions (`pyenv root`, else ~/.pyenv).

CI_PYTHONS=(3.13 3.12 3.11)

_python_runs() { "$1" -c 'import sys, venv' >/dev/null 2>&1; }

find_python() {
    local version=$1 candidate root
    candidate=$(command -v "python$version" 2>/dev/null || true)
    if [ -n "$candidate" ] && _python_runs "$candidate"; then
        # Resolve pyenv shims and symlinks to the interpreter itself.
        "$candidate" -c 'import sys; print(sys.executable)'
        return 0
    fi
    root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
    for candidate in $(ls -1d "$root/versions/$version".*/bin/"python$version" 2>/dev/null | sort -V -r); do
        if _python_runs "$candidate"; then echo "$candidate"; return 0; fi
    done
    return 1
}

newest_python() {
    local version
    for version in "${CI_PYTHONS[@]}"; do
        find_python "$version" && return 0
    done
    return 1
}
