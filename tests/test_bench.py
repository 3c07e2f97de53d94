"""benchmarks/conv_bench.py: how it judges its targets (not its timings: those are for the benchmark).

The torch targets are judged on the median of each round's fast/torch ratio (a paired comparison),
not on the ratio of the two medians. Hand-worked rounds below make the two disagree.
"""

from __future__ import annotations

import importlib.util
import subprocess
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


# --- benchmarks/otter_bench.py: Otter's autograder for grade-bench (Otter itself is not needed here)


@pytest.fixture(scope="module")
def otter():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import otter_bench

        yield otter_bench
    finally:
        while str(ROOT / "benchmarks") in sys.path:  # otter_bench adds it too, for cnnlab_otter
            sys.path.remove(str(ROOT / "benchmarks"))


@pytest.mark.parametrize("total", [*range(0, 40), 199, 200, 300, 500, 511, 512, 700, 1000])
def test_every_points_value_is_a_sum_of_passed_cases(otter, total):
    # Otter scores a test file as the sum of its passed cases' points: every value grade_task can
    # give (hundredths from 0 to the task's points) must be a subset of the case weights, exactly
    weights = otter.cnnlab_otter.cent_weights(total)
    assert sum(weights) == total and all(w > 0 for w in weights)
    assert len(weights) <= total.bit_length() + 1
    for cents in range(total + 1):
        chosen = otter.cnnlab_otter.earned_cases(cents, weights)
        assert sum(weights[i] for i in chosen) == cents, (total, cents, chosen)
    with pytest.raises(ValueError, match="cents must be in"):
        otter.cnnlab_otter.earned_cases(total + 1, weights)


def test_otter_test_file_is_ok_format_worth_the_task(otter):
    source = otter.ok_test("task2_2", "2.2", 3.5)
    env: dict = {}
    exec(source, env)  # what Otter does with a test file
    assert env["OK_FORMAT"] is True
    (suite,) = env["test"]["suites"]
    assert env["test"]["name"] == "task2_2" and suite["type"] == "doctest"
    points = [case["points"] for case in suite["cases"]]
    assert points == [w / 100 for w in otter.cnnlab_otter.cent_weights(350)]
    assert round(sum(points), 9) == 3.5
    for i, case in enumerate(suite["cases"]):
        assert f"cnnlab_otter.earns('2.2', 350, {i})\nTrue" in case["code"]


def test_without_otter_the_benchmark_says_so_in_one_line(otter, tmp_path, monkeypatch):
    def offline(cmd, **kwargs):
        if "pip" in cmd:
            return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found")
        (tmp_path / "venv" / "bin").mkdir(parents=True)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(otter.subprocess, "run", offline)
    lines: list[str] = []
    assert otter.otter_python(tmp_path / "venv", log=lines.append) is None
    assert len(lines) == 2 and lines[0].startswith("Otter-Grader: installing")
    assert "not compared" in lines[1] and "No matching distribution" in lines[1], lines
    assert not (tmp_path / "venv" / otter.STAMP).exists()  # the next run tries again
