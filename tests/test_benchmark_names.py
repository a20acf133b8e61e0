"""A benchmark is one module (docs/architecture.md): outside `unlearning/benchmarks/` no module compares a benchmark's
name or keys a table by it, and the registry lists every benchmark.

    .venv/bin/python -m pytest tests/test_benchmark_names.py -q

The scan reads every module of the project's packages (AST, so docstrings and messages are free to name
benchmarks) and flags a string literal that is a registered benchmark's name ("tofu", "muse", "lkf", "wmdp") when
it is compared (==, !=, in, not in, a match case) or is a dict key.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("unlearn_sweep", "dashboards", "sweeps", "trainables", "search_spaces", "unlearning")
HOME = REPO / "unlearning" / "benchmarks"
NAMES = {"tofu", "muse", "lkf", "wmdp"}


def _names_in(node: ast.AST) -> list[str]:
    """Benchmark names among the string literals of `node` (a constant, or a tuple/list/set of them)."""
    items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return [i.value for i in items if isinstance(i, ast.Constant) and i.value in NAMES]


def offenders(source: str) -> list[tuple[int, str]]:
    """(line, name) of every comparison with, or dict key of, a benchmark name in `source`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                found += [(node.lineno, n) for n in _names_in(side)]
        elif isinstance(node, ast.Dict):
            found += [(node.lineno, n) for k in node.keys if k is not None for n in _names_in(k)]
        elif isinstance(node, ast.match_case) and isinstance(node.pattern, ast.MatchValue):
            found += [(node.pattern.lineno, n) for n in _names_in(node.pattern.value)]
    return found


def test_no_module_outside_the_benchmarks_compares_a_benchmark_name():
    bad = []
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            if HOME in path.parents:
                continue
            bad += [f"{path.relative_to(REPO)}:{line}: {name!r}" for line, name in offenders(path.read_text())]
    assert not bad, "look the benchmark up in unlearning.benchmarks.registry instead:\n" + "\n".join(bad)


def test_the_scan_finds_a_comparison_and_a_key():
    assert offenders('if data.benchmark == "muse":\n    pass\n') == [(1, "muse")]
    assert offenders('x = b in ("tofu", "lkf")\n') == [(1, "tofu"), (1, "lkf")]
    assert offenders('T = {"wmdp": 1}\n') == [(1, "wmdp")]
    assert offenders('"""tofu"""\nprint("tofu", f"muse")\n') == []   # naming a benchmark is fine


def test_the_registry_lists_every_benchmark_behind_the_protocol():
    from unlearning.benchmarks.base import AddonBenchmark, Benchmark, TrainingBenchmark
    from unlearning.benchmarks.registry import BENCHMARKS, addons, trained_names

    assert set(BENCHMARKS) == NAMES
    assert all(isinstance(b, Benchmark) and b.name == n for n, b in BENCHMARKS.items())
    assert set(trained_names()) == {"tofu", "muse", "lkf", "wmdp"}   # WMDP trains on its corpora, and is an add-on
    assert all(isinstance(BENCHMARKS[n], TrainingBenchmark) for n in trained_names())
    assert [b.name for b in addons()] == ["wmdp"] and isinstance(BENCHMARKS["wmdp"], AddonBenchmark)
