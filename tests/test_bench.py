"""benchmarks/conv_bench.py: how it judges its targets (not its timings: those are for the benchmark).

The torch targets are judged on the median of each round's fast/torch ratio (a paired comparison),
not on the ratio of the two medians. Hand-worked rounds below make the two disagree.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("conv_bench", ROOT / "benchmarks" / "conv_bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def _results(bench, fast_ms: dict[str, float], torch_ms: dict[str, float]):
    results = {}
    for shape in bench.SHAPES:
        results[(shape.name, "float64", "fast", "fwd")] = 1.0  # 1 s forward: any GFLOP/s will do
        results[(shape.name, "float64", "fast", "fwd+bwd")] = fast_ms[shape.name] / 1e3
        results[(shape.name, "float64", "torch", "fwd+bwd")] = torch_ms[shape.name] / 1e3
    return results


def test_targets_are_judged_on_paired_rounds(bench, capsys):
    # B: rounds fast/torch = 1/2, 3/10, 3/2 -> ratios 0.5, 0.3, 1.5, median 0.5 (PASS), while the
    # ratio of the medians is 3/2 = 1.5. C: ratios 0.9, 0.7, 0.8 -> median 0.8 (MISS).
    ratios = {("B", "float64", "fwd+bwd"): [0.5, 0.3, 1.5], ("C", "float64", "fwd+bwd"): [0.9, 0.7, 0.8]}
    results = _results(bench, {"A": 1, "B": 3, "C": 8}, {"A": 1, "B": 2, "C": 10})
    bench.print_targets(results, ratios, matmul=1e9)
    lines = {line.split(":")[0].strip(): line for line in capsys.readouterr().out.splitlines()}
    b_line = lines["fast/torch time, fwd+bwd float64, shape B"]
    c_line = lines["fast/torch time, fwd+bwd float64, shape C"]
    assert ": 0.500" in b_line and "PASS" in b_line, b_line
    assert "rounds 0.30-1.50" in b_line and "medians 1.50" in b_line, b_line
    assert ": 0.800" in c_line and "MISS" in c_line, c_line


def test_without_torch_the_targets_are_not_applicable(bench, capsys):
    results = {
        (shape.name, "float64", "fast", name): 1.0 for shape in bench.SHAPES for name in ("fwd", "fwd+bwd")
    }
    bench.print_targets(results, {}, matmul=1e9)
    out = capsys.readouterr().out
    assert out.count("n/a") == 2, out


def test_rounds_of_medians_keeps_every_round(bench):
    calls = []
    per_round = bench.rounds_of_medians({"f": lambda: calls.append(1)}, reps=3, rounds=4, pause=0)
    assert len(per_round["f"]) == 4
    assert len(calls) == 4 * (3 + 1)  # each round: one warm-up call and three timed calls
