"""Time the book's attention against PyTorch's fused ``scaled_dot_product_attention``.

Usage::

    python benchmarks/bench_attention.py            # CPU, 1 thread, causal
    python benchmarks/bench_attention.py --threads 2 --repeats 10

Both compute softmax(Q K^T / sqrt(d_k)) V with a causal mask and give the same
numbers (``tests/scratch/test_attention.py``). The teaching version
(:func:`ift_tutorial.scratch.attention.scaled_dot_product_attention`) loses, increasingly
with the sequence length, because it does the formula literally:

- it materialises the whole (B, H, L, S) score matrix, then a masked copy, then
  the softmax weights: several full passes over L x S floats in memory (for
  B=1, H=32, L=S=4096 in fp32 that is 2 GiB per copy). Memory traffic, not
  arithmetic, dominates;
- every step is a separate kernel (matmul, scale, mask, isinf check, softmax,
  matmul), each reading and writing the full matrix;
- it computes the masked-out upper triangle and then throws it away.

PyTorch's fused kernels (flash attention on CPU and GPU) instead walk over blocks
of keys with a running ("online") softmax: the L x S matrix never exists in
memory, blocks above the causal diagonal are skipped, and everything happens in
one kernel that keeps its tiles in cache. The extra work the teaching version does
buys one thing: it returns the attention weights, which the book draws.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from ift_tutorial.scratch.attention import scaled_dot_product_attention

#: (batch, heads, seq_len, head_dim)
SIZES = [
    (1, 8, 128, 64),
    (1, 8, 512, 64),
    (4, 8, 512, 64),
    (1, 8, 1024, 64),
    (1, 8, 2048, 64),
    (1, 28, 1024, 128),  # one Qwen2.5-7B layer's query heads, 1k tokens
]


def _time(fn, repeats: int) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` runs, after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-causal", action="store_true", help="full (bidirectional) attention")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    causal = not args.no_causal
    print(f"torch {torch.__version__}, CPU, {args.threads} thread(s), fp32, causal={causal}, "
          f"median of {args.repeats}")
    header = f"{'B':>2} {'H':>3} {'L=S':>5} {'E':>4} | {'ours ms':>9} {'SDPA ms':>9} {'ratio':>6} | {'weights MiB':>11}"
    print(header)
    print("-" * len(header))
    for B, H, L, E in SIZES:
        gen = torch.Generator().manual_seed(0)
        q, k, v = (torch.randn(B, H, L, E, generator=gen) for _ in range(3))
        with torch.no_grad():
            ours = _time(lambda: scaled_dot_product_attention(q, k, v, is_causal=causal), args.repeats)
            fused = _time(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal), args.repeats)
            out, _ = scaled_dot_product_attention(q, k, v, is_causal=causal)
            assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, is_causal=causal), atol=1e-4)
        weights_mib = B * H * L * L * 4 / 2**20  # one fp32 copy of the (B, H, L, S) matrix
        print(f"{B:>2} {H:>3} {L:>5} {E:>4} | {ours * 1e3:>9.2f} {fused * 1e3:>9.2f} "
              f"{ours / fused:>6.1f} | {weights_mib:>11.1f}")


if __name__ == "__main__":
    main()
