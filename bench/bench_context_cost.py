"""What one turn's new tokens cost on the embedded model as the context grows (the floor under
issue 16's TTFT targets): 33 tokens (one user message and its template) evaluated after 1,000,
3,000, 5,000 and 7,000 tokens already in llama.cpp's KV cache, and the bulk prompt rate.

Run:  .venv/bin/python bench/bench_context_cost.py [--flash-attn]

Nothing of memchat's memory is involved: the cache holds the context, only the new tokens are
evaluated, as a turn whose cache was kept. Attention over a longer cache makes each token dearer.
"""

from __future__ import annotations

import argparse
import time

import llama_cpp

from memchat.providers.llama_cache import two_sequences
from memchat.providers.local_llama import default_model_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flash-attn", action="store_true", help="llama.cpp's flash attention (slower here)")
    args = parser.parse_args()
    extra = {"flash_attn": True} if args.flash_attn else {}
    with two_sequences():  # as memchat makes its context
        llm = llama_cpp.Llama(
            model_path=str(default_model_path()), n_ctx=8192, n_threads=2, n_threads_batch=2, verbose=False, **extra
        )
    text = " ".join(f"Sentence {i} about rivers, gardens and cellos in the morning light." for i in range(600))
    tokens = llm.tokenize(text.encode())[:7600]
    done = 0
    for length in (1000, 3000, 5000, 7000):
        start = time.perf_counter()
        llm.eval(tokens[done:length])
        rate = (length - done) / (time.perf_counter() - start)
        start = time.perf_counter()
        llm.eval(tokens[length : length + 33])
        took = time.perf_counter() - start
        done = length + 33
        print(f"context {length:>5}: 33 new tokens {took * 1000:4.0f} ms; bulk prompt {rate:4.0f} tokens/s", flush=True)


if __name__ == "__main__":
    main()
