#!/usr/bin/env bash
# Create .venv and install memchat with the embedded model and the server; `--dev` adds the
# test tools (scripts/test.sh passes it). The first run compiles llama-cpp-python from
# source (only the library memchat loads: no multimodal part), printing its progress; the
# built wheel is kept in ~/.cache/memchat/wheels, so later runs take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
extras=local,server,mcp,pdf
[ "${1:-}" = --dev ] && extras=local,server,mcp,pdf,postgres,dev
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.memchat-installed-${extras//,/-}
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}
    # llama.cpp builds for the host CPU by default (-march=native). On CPUs with AMX that
    # build runs the model through ggml's AMX kernels, which crash (SIGSEGV in
    # ggml_backend_amx_mul_mat) with our Q4_1 model; and a wheel built on one machine
    # can use instructions another lacks. So on x86-64 build for AVX2 (every x86-64 server
    # CPU of the last decade), once per set of flags, into our own wheel directory: pip's
    # cache would hand back a wheel built with other flags.
    # LLAVA_BUILD=OFF: llama-cpp-python's multimodal library (mtmd, clip) is a third of the
    # compile and memchat never loads it (llama_cpp imports it only for vision chat handlers).
    if [ -z "${CMAKE_ARGS:-}" ]; then
        export CMAKE_ARGS="-DLLAVA_BUILD=OFF"
        if [ "$(uname -m)" = x86_64 ]; then
            CMAKE_ARGS="$CMAKE_ARGS -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
        fi
    fi
    llama=$(sed -n 's/^ *"\(llama-cpp-python==[^"]*\)".*/\1/p' pyproject.toml)
    wheels=${XDG_CACHE_HOME:-$HOME/.cache}/memchat/wheels/$(printf '%s' "$llama ${CMAKE_ARGS:-}" | sha1sum | cut -c1-12)
    if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
        echo "memchat: compiling $llama (first install only, a few minutes)…" >&2
        log=$(mktemp)
        # the build's own step counter ("[12/96]" from ninja, "[ 40%]" from make), as a percentage
        if ! .venv/bin/python -m pip wheel -v --no-deps --no-cache-dir -w "$wheels" "$llama" 2>&1 |
            tee "$log" | awk '
                { line = $0; sub(/^ +/, "", line) }
                match(line, /^\[ *[0-9]+\/[0-9]+\]/) { split(substr(line, 2, RLENGTH - 2), a, "/"); p = int(100 * a[1] / a[2]) }
                match(line, /^\[ *[0-9]+%\]/) { p = int(substr(line, 2, RLENGTH - 3)) }
                p >= last + 10 { last = p - p % 10; printf "memchat: compiling… %d%%\n", last > "/dev/stderr" }'; then
            tail -n 40 "$log" >&2
            echo "memchat: compiling $llama failed (the lines above say why; a C/C++ compiler and cmake are needed)" >&2
            rm -f "$log"
            exit 1
        fi
        rm -f "$log"
    fi
    echo "memchat: installing…" >&2
    .venv/bin/python -m pip install --quiet --find-links "$wheels" -e ".[$extras]"
    touch "$stamp"
fi
# byte-compile memchat once, so that each `memchat` process starts fast even where
# PYTHONDONTWRITEBYTECODE is set (Python still reads existing .pyc files)
.venv/bin/python -m compileall -q src >/dev/null
