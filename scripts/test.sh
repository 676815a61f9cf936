#!/usr/bin/env bash
# Install the test servers if missing, build .venv, then lint, type-check and run the tests.
# Usage: scripts/test.sh [pytest arguments...]   (from any directory)
#   no arguments: the whole suite on one pytest-xdist worker per core (at least 2), each test file
#     kept on one worker (--dist loadfile: a file's module fixtures and servers start once);
#     PYTEST_WORKERS=N sets the number of workers (0: serially, in one process).
#   arguments: pytest runs just those, serially (e.g. `scripts/test.sh tests/test_decode.py -x`);
#     add `-n 2 --dist loadfile` to them for workers.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian installs daemons into sbin directories that a non-root PATH may lack.
have() {
    command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/usr/local/sbin/$1" || -x "/sbin/$1" ]]
}

# What the tests need from Debian, each installed when missing, in one apt-get run:
# - mosquitto, victoria-metrics: the tests start their own servers on free ports and never use the
#   system services (apt may say that policy-rc.d denied starting victoria-metrics.service);
# - postgresql: its server binaries (initdb, postgres) live in /usr/lib/postgresql/<version>/bin;
#   the tests run a private cluster on a free port;
# - systemd: `systemd-analyze verify` checks deploy/'s unit; the tests never start systemd;
# - chromium, fonts-noto-cjk: the console's browser tests drive Debian's chromium through
#   Playwright (a Playwright browser download cannot work offline); the fonts draw Chinese pages
#   and are embedded in the care report's PDF;
# - poppler-utils: pdftotext, pdfinfo, pdffonts, pdftoppm read the care report's PDF back.
missing=()
have mosquitto || missing+=(mosquitto)
have victoria-metrics || missing+=(victoria-metrics)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || have initdb || missing+=(postgresql)
have systemd-analyze || missing+=(systemd)
have chromium || missing+=(chromium)
[[ -d /usr/share/fonts/opentype/noto ]] || missing+=(fonts-noto-cjk)
have pdftoppm || missing+=(poppler-utils)
if ((${#missing[@]})); then
    if [[ "$(id -u)" -eq 0 ]]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "missing: ${missing[*]}; this is neither root nor has sudo:" >&2
        echo "  apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
    ${sudo[@]+"${sudo[@]}"} apt-get update
    ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
fi

if [[ ! -x .venv/bin/python ]]; then
    python="${PYTHON:-python3}"
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "$python is $("$python" -V 2>&1); community-edge needs Python 3.11 or newer" >&2
        exit 1
    fi
    if ! "$python" -c 'import ensurepip, venv' 2>/dev/null && [[ "$(id -u)" -eq 0 ]]; then
        apt-get update && env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv
    fi
    "$python" -m venv .venv || {
        echo "creating .venv failed; on Debian: apt-get install python3-venv" >&2
        exit 1
    }
fi

# pip 25.1 is the first to install PEP 735 dependency groups (--group).
.venv/bin/python -m pip install --quiet --upgrade 'pip>=25.1'
.venv/bin/python -m pip install --quiet -e . --group dev

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
if (($#)); then
    .venv/bin/pytest -q "$@"
else
    workers="${PYTEST_WORKERS:-$(nproc)}"
    if [[ -z "${PYTEST_WORKERS:-}" ]] && ((workers < 2)); then
        workers=2 # the suite waits on servers and browsers as much as it computes
    fi
    if ((workers > 0)); then
        .venv/bin/pytest -q -n "$workers" --dist loadfile --durations=25
    else
        .venv/bin/pytest -q --durations=25
    fi
fi
