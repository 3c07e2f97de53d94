"""Benchmark the convolution layer: the loop reference, the fast version, and PyTorch.

Run from the repository root::

    python benchmarks/conv_bench.py           # the full run (a few minutes on 2 cores)
    python benchmarks/conv_bench.py --quick   # a smoke run of a few seconds (used by ``make demo``)

One run measures, for the shapes below (3x3 filters, pad 1, stride 1), in float64 and float32, the
forward pass and forward+backward of:

* ``loop``:  ``cnnlab.conv`` from ``solutions/`` (the reference, loops over output pixels);
* ``fast``:  ``cnnlab.fast`` (unrolled windows and matrix products, chunk by chunk; a large
  layer's batch split over threads, each with a one-thread BLAS);
* ``torch``: ``torch.nn.functional.conv2d`` on the CPU, backward through autograd (when installed).

and the float64 GFLOP/s of numpy's own 1024x1024 matrix product, the ceiling any im2col code can hope
to approach. Each number is the median of several timed calls after one warm-up call, taken in
ROUNDS rounds: within a round each implementation is timed in a block of its own, and the table shows
the median over the rounds. The fast/torch targets are judged on the median of the rounds' own
ratios (fast and torch of the same round are timed a second apart): on a shared or virtual machine
the same code can run 20-40% slower for seconds or minutes at a time, and pairing the two within a
round keeps such a spell from counting against one side only. Other programs running at the same time (a test
suite, a notebook) slow everything down unevenly: benchmark on an idle machine. Before timing, the
fast version is checked against the reference (float64, relative error < 1e-12) and the script
exits with status 1 if it disagrees. Missing a speed target only prints MISS: this is a benchmark,
not a test.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# The course's targets: fast fwd+bwd at most this fraction of torch's time, and fast forward at least
# this fraction of numpy's matmul GFLOP/s.
TORCH_RATIO_TARGET = 0.6
GEMM_FRACTION_TARGET = 0.40
EXACT = 1e-12
PAUSE = 0.2  # seconds between timing blocks, for idle threads to fall asleep (0.02 with --quick)
ROUNDS = 5  # rounds of blocks (1 with --quick)


@dataclass(frozen=True)
class Shape:
    name: str
    N: int
    C: int
    H: int
    W: int
    K: int
    F: int = 3
    stride: int = 1
    pad: int = 1

    @property
    def out_hw(self) -> tuple[int, int]:
        Ho = (self.H + 2 * self.pad - self.F) // self.stride + 1
        Wo = (self.W + 2 * self.pad - self.F) // self.stride + 1
        return Ho, Wo

    @property
    def flops(self) -> int:
        """Floating-point operations of one forward pass (a multiply-add counts as 2)."""
        Ho, Wo = self.out_hw
        return 2 * self.N * self.K * self.C * self.F * self.F * Ho * Wo

    def __str__(self) -> str:
        size = f"{self.H}x{self.W}, K={self.K} {self.F}x{self.F}"
        return f"{self.name}: N={self.N} C={self.C} {size} stride {self.stride} pad {self.pad}"


SHAPES = [
    Shape("A", N=8, C=3, H=32, W=32, K=16),
    Shape("B", N=32, C=16, H=32, W=32, K=32),
    Shape("C", N=4, C=64, H=56, W=56, K=64),
]


# ---------------------------------------------------------------------------------------------------
# Loading what is measured


def load_reference() -> ModuleType:
    """The reference package in ``solutions/cnnlab``, loaded as ``cnnlab_reference``."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from autograder.reference import load_reference as load

    return load()


def load_torch() -> ModuleType | None:
    try:
        import torch
    except ImportError:
        return None
    return torch


# ---------------------------------------------------------------------------------------------------
# Timing


def median_times(
    fns: dict[Hashable, Callable[[], object]], reps: int, pause: float = PAUSE
) -> dict[Hashable, float]:
    """Median wall-clock seconds of each function over ``reps`` calls, after one warm-up call.

    Each function is timed in a block of its own, after a short ``pause`` (seconds). numpy's OpenBLAS
    and torch's OpenMP each keep their worker threads spinning for a while after a call; taking turns
    call by call would let one library's spinning threads steal the cores from the other's.
    """
    result = {}
    for name, fn in fns.items():
        time.sleep(pause)
        fn()
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        result[name] = statistics.median(times)
    return result


def matmul_gflops(reps: int, n: int = 1024) -> float:
    """GFLOP/s of numpy's float64 (n, n) @ (n, n) product (2 n^3 flops), median of ``reps`` calls."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    seconds = median_times({"matmul": lambda: a @ b}, reps)["matmul"]
    return 2 * n**3 / seconds / 1e9


def layer_functions(
    shape: Shape, dtype: type, ref: ModuleType, fast: ModuleType, torch: ModuleType | None, with_loop: bool
) -> dict[tuple[str, str], Callable[[], object]]:
    """``{(implementation, pass): function}`` for one shape and dtype, on fixed random data."""
    rng = np.random.default_rng(0)
    Ho, Wo = shape.out_hw
    x = rng.standard_normal((shape.N, shape.C, shape.H, shape.W)).astype(dtype)
    w = rng.standard_normal((shape.K, shape.C, shape.F, shape.F)).astype(dtype)
    b = rng.standard_normal(shape.K).astype(dtype)
    dout = rng.standard_normal((shape.N, shape.K, Ho, Wo)).astype(dtype)
    s, p = shape.stride, shape.pad

    def numpy_pair(module: ModuleType) -> dict[str, Callable[[], object]]:
        def forward():
            return module.conv2d_forward(x, w, b, s, p)

        def forward_backward():
            _, cache = module.conv2d_forward(x, w, b, s, p)
            return module.conv2d_backward(dout, cache)

        return {"fwd": forward, "fwd+bwd": forward_backward}

    impls = {"fast": numpy_pair(fast)}
    if with_loop:
        impls["loop"] = numpy_pair(ref.conv)
    if torch is not None:
        conv2d = torch.nn.functional.conv2d
        xt = torch.from_numpy(x).requires_grad_(True)
        wt = torch.from_numpy(w).requires_grad_(True)
        bt, dt = torch.from_numpy(b), torch.from_numpy(dout)

        def torch_forward():
            return conv2d(xt, wt, bt, stride=s, padding=p)

        def torch_forward_backward():
            xt.grad = wt.grad = None
            (conv2d(xt, wt, bt, stride=s, padding=p) * dt).sum().backward()

        impls["torch"] = {"fwd": torch_forward, "fwd+bwd": torch_forward_backward}
    return {(impl, name): fn for impl, passes in impls.items() for name, fn in passes.items()}


# ---------------------------------------------------------------------------------------------------
# Correctness


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """``max |a - b| / max(|a| + |b|)`` over all entries (0 when both are zero)."""
    scale = float(np.max(np.abs(a) + np.abs(b), initial=0.0))
    return 0.0 if scale == 0 else float(np.max(np.abs(a - b))) / scale


def check_correctness(ref: ModuleType, fast: ModuleType) -> float:
    """The largest relative error of fast against the loop reference, forward and backward, float64."""
    rng = np.random.default_rng(1)
    worst = 0.0
    cases = [(SHAPES[0], 1, 1), (Shape("odd", N=2, C=3, H=9, W=7, K=4, F=3), 2, 2)]
    for shape, stride, pad in cases:
        x = rng.standard_normal((shape.N, shape.C, shape.H, shape.W))
        w = rng.standard_normal((shape.K, shape.C, shape.F, shape.F - 1))  # FH != FW
        b = rng.standard_normal(shape.K)
        out, cache = fast.conv2d_forward(x, w, b, stride, pad)
        out_ref, cache_ref = ref.conv.conv2d_forward(x, w, b, stride, pad)
        dout = rng.standard_normal(out_ref.shape)
        grads = fast.conv2d_backward(dout, cache)
        grads_ref = ref.conv.conv2d_backward(dout, cache_ref)
        for a, r in zip((out, *grads), (out_ref, *grads_ref), strict=True):
            if a.shape != r.shape:
                return float("inf")
            worst = max(worst, rel_error(a, r))
    return worst


# ---------------------------------------------------------------------------------------------------
# Report


def print_environment(fast: ModuleType, torch: ModuleType | None) -> None:
    cpus = f"{os.cpu_count()} CPUs ({platform.machine()})"
    print(f"python {platform.python_version()}, numpy {np.__version__}, {cpus}")
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        config = blas.get("openblas configuration", "")
        print(f"numpy BLAS: {blas.get('name')} {blas.get('version')} {config}")
    except Exception as exc:  # show_config's layout differs across numpy versions
        print(f"numpy BLAS: unknown ({exc})")
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            print(
                f"threadpool: {pool.get('internal_api')} {pool.get('version')} "
                f"threads={pool.get('num_threads')} arch={pool.get('architecture')}"
            )
    except ImportError:
        print("threadpool: threadpoolctl not installed (BLAS thread count not shown)")
    threads = importlib.import_module(fast.__name__.rsplit(".", 1)[0] + "._internal.threads")
    if fast.get_num_threads() > 1:
        print(
            f"cnnlab.fast: batches split over {fast.get_num_threads()} threads, one BLAS thread each, "
            f"at >= {fast.MIN_PARALLEL_FLOPS / 1e6:g} MFLOP per thread (OpenBLAS {threads._blas().path})"
        )
    else:
        print("cnnlab.fast: serial (1 thread, or numpy's BLAS is not an OpenBLAS it can control)")
    prefixes = ("OPENBLAS", "OMP_", "MKL_", "GOTO", "CNNLAB_")
    env = {k: v for k, v in os.environ.items() if k.startswith(prefixes)}
    print(f"BLAS/OpenMP environment: {env or 'none set'}")
    if any(k in env for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")):
        print("note: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set; they can slow numpy's BLAS")
    if torch is None:
        print("torch: not installed, the torch columns are skipped (pip install -e '.[torch]')")
    else:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")


Results = dict[tuple[str, str, str, str], float]  # (shape, dtype, implementation, pass) -> seconds
# (shape, dtype, pass) -> fast/torch time ratio of each round
RoundRatios = dict[tuple[str, str, str], list[float]]


def rounds_of_medians(
    fns: dict[Hashable, Callable[[], object]], reps: int, rounds: int, pause: float
) -> dict[Hashable, list[float]]:
    """``median_times`` repeated ``rounds`` times: each function's list of per-round medians."""
    per_round: dict[Hashable, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, seconds in median_times(fns, reps, pause).items():
            per_round[name].append(seconds)
    return per_round


def measure(
    ref: ModuleType, fast: ModuleType, torch: ModuleType | None, quick: bool
) -> tuple[Results, RoundRatios]:
    """Time every shape, dtype, implementation and pass; print the table as it goes."""
    reps = 2 if quick else 7
    rounds = 1 if quick else ROUNDS
    # The loop reference is slow (seconds per call on C): fewer calls, and only shape A with --quick.
    loop_reps = {"A": reps, "B": 3, "C": 3}
    if quick:
        loop_reps = {"A": reps}
    print(
        f"median over {rounds} round(s) of the median of {reps} calls after a warm-up call; loop reference: "
        + ", ".join(f"{name} ({n} calls)" for name, n in loop_reps.items())
        + ("; skipped on B and C" if quick else "")
    )
    print("torch: forward with requires_grad on x and w; backward = autograd of (out * dout).sum()")
    for shape in SHAPES:
        print(f"  shape {shape}")
    print()
    columns = ("shape", "dtype", "pass", "loop ms", "fast ms", "torch ms", "fast/torch", "loop/fast")
    header = "{:5} {:8} {:8} {:>9} {:>9} {:>9} {:>10} {:>9}".format(*columns)
    print(header)
    print("-" * len(header))
    results: Results = {}
    ratios: RoundRatios = {}
    for shape in SHAPES:
        for dtype in (np.float64, np.float32):
            fns = layer_functions(shape, dtype, ref, fast, torch, with_loop=shape.name in loop_reps)
            loop_fns = {key: fns.pop(key) for key in list(fns) if key[0] == "loop"}
            pause = 0.02 if quick else PAUSE
            per_round = rounds_of_medians(fns, reps, rounds, pause)
            times = {name: statistics.median(values) for name, values in per_round.items()}
            if loop_fns:  # slow, and no target depends on it: one round
                times.update(median_times(loop_fns, loop_reps[shape.name], pause))
            dtype_name = np.dtype(dtype).name
            for name in ("fwd", "fwd+bwd"):
                if ("torch", name) in per_round:
                    pairs = zip(per_round[("fast", name)], per_round[("torch", name)], strict=True)
                    ratios[(shape.name, dtype_name, name)] = [f / t for f, t in pairs]
            for (impl, name), seconds in times.items():
                results[(shape.name, dtype_name, impl, name)] = seconds
            for name in ("fwd", "fwd+bwd"):
                loop_t, fast_t, torch_t = (times.get((impl, name)) for impl in ("loop", "fast", "torch"))
                row = (
                    shape.name,
                    dtype_name,
                    name,
                    fmt_ms(loop_t),
                    fmt_ms(fast_t),
                    fmt_ms(torch_t),
                    fmt_ratio(torch_t and fast_t / torch_t),
                    fmt_ratio(loop_t and loop_t / fast_t, "x"),
                )
                print("{:5} {:8} {:8} {:>9} {:>9} {:>9} {:>10} {:>9}".format(*row))
    return results, ratios


def print_targets(results: Results, ratios: RoundRatios, matmul: float) -> None:
    """The speed targets, each with PASS or MISS (or n/a without torch), and the loop speed-ups.

    The torch target is judged on the median over the rounds of each round's fast/torch ratio: a
    paired comparison, since within a round the two are timed a second apart, so a slow spell of the
    machine that lasts a few seconds affects both sides of a ratio alike. The range of the rounds'
    ratios and the ratio of the table's medians are printed beside it.
    """
    print()
    print("targets")
    for shape in SHAPES[1:]:
        per_round = ratios.get((shape.name, "float64", "fwd+bwd"), [])
        ratio = statistics.median(per_round) if per_round else None
        ok = None if ratio is None else ratio <= TORCH_RATIO_TARGET
        detail = ""
        if len(per_round) > 1:
            of_medians = (
                results[(shape.name, "float64", "fast", "fwd+bwd")]
                / results[(shape.name, "float64", "torch", "fwd+bwd")]
            )
            detail = (
                f"  (rounds {min(per_round):.2f}-{max(per_round):.2f}; ratio of the table's medians"
                f" {of_medians:.2f})"
            )
        print(
            f"  fast/torch time, fwd+bwd float64, shape {shape.name}: {fmt_ratio(ratio, digits=3)}"
            f"  (target <= {TORCH_RATIO_TARGET})  {verdict(ok)}{detail}"
        )
    shape_c = SHAPES[2]
    gflops = shape_c.flops / results[(shape_c.name, "float64", "fast", "fwd")] / 1e9
    fraction = gflops / matmul
    print(
        f"  fast forward float64 on C: {gflops:.1f} GFLOP/s = {fraction:.2f} of matmul's {matmul:.1f}"
        f"  (target >= {GEMM_FRACTION_TARGET})  {verdict(fraction >= GEMM_FRACTION_TARGET)}"
    )
    for name in ("fwd", "fwd+bwd"):
        speedups = [
            f"{shape.name} {results[key] / results[(shape.name, 'float64', 'fast', name)]:.0f}x"
            for shape in SHAPES
            if (key := (shape.name, "float64", "loop", name)) in results
        ]
        print(f"  fast vs loop speed-up, {name} float64: " + ", ".join(speedups))


def fmt_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.2f}"


def fmt_ratio(x: float | None, suffix: str = "", digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}{suffix}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def run(quick: bool = False) -> int:
    """Check, time, print. Returns the exit status: 1 only when fast disagrees with the reference."""
    ref = load_reference()
    fast = importlib.import_module(f"{ref.__name__}.fast")
    torch = load_torch()

    print_environment(fast, torch)
    err = check_correctness(ref, fast)
    print(f"correctness: fast vs loop reference, float64, max relative error {err:.1e} (must be < {EXACT:g})")
    if not err < EXACT:
        print("FAILED: the fast convolution disagrees with the reference; nothing timed")
        return 1
    matmul = matmul_gflops(reps=3 if quick else 9)
    print(f"numpy float64 1024x1024 matmul: {matmul:.1f} GFLOP/s")
    results, ratios = measure(ref, fast, torch, quick)
    print_targets(results, ratios, matmul)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run of a few seconds (used by make demo)"
    )
    return run(quick=parser.parse_args(argv).quick)


if __name__ == "__main__":
    sys.exit(main())
