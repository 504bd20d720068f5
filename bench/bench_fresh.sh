#!/usr/bin/env bash
# Time from a fresh clone to the first reply (issue 17): README's first command, with nothing
# cached — a new clone, and a HOME of its own so pip's cache and memchat's wheel cache start
# empty (llama-cpp-python compiles from source). The chat itself is interactive, so the first
# reply is asked with `memchat ask` on the same embedded default.
#
#   bash bench/bench_fresh.sh            # cold: compiles llama-cpp-python
#   bash bench/bench_fresh.sh --warm     # the same with this user's caches (a second machine setup)
#
# Run it on a quiet machine: the compile takes both cores.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/memchat-fresh.XXXXXX)
home="$work/home"
mkdir -p "$home"
[ "${1:-}" = --warm ] && home=$HOME
git clone -q "$repo" "$work/clone"
cd "$work/clone"
t0=$(date +%s.%N)
HOME=$home bash scripts/setup.sh >"$work/setup.log" 2>&1 || { tail -20 "$work/setup.log"; exit 1; }
t1=$(date +%s.%N)
HOME=$home .venv/bin/memchat ask "Hello! Who are you?" >"$work/ask.log" 2>&1 || { cat "$work/ask.log"; exit 1; }
t2=$(date +%s.%N)
printf 'setup %.0f s (compile: %s)\nfirst reply %.1f s\nfresh clone to first reply %.0f s\n' \
    "$(echo "$t1 - $t0" | bc)" "$(grep -q compiling "$work/setup.log" && echo yes || echo cached)" \
    "$(echo "$t2 - $t1" | bc)" "$(echo "$t2 - $t0" | bc)"
echo "reply: $(head -c 200 "$work/ask.log")"
rm -rf "$work"
