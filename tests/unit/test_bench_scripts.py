"""Every speed benchmark in bench/ imports only names that exist (a refactor that renames a
function must not leave a bench that fails at its first line)."""

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(BENCH.glob("*.py"))


def test_there_are_benchmarks():
    assert {p.name for p in SCRIPTS} >= {"throughput.py", "metrics.py", "concurrency.py"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bench_script_imports(script):
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # runs the imports; main() is guarded by __name__
    assert callable(module.main)


@pytest.mark.slow
def test_streaming_bench_quick_mode_runs():
    """bench/streaming.py --quick: a tiny folder, the three cases, the table and ratios."""
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(BENCH / "streaming.py"), "--quick", "--threads",
                          "1"], capture_output=True, text=True, timeout=600,
                         env={**os.environ}, check=True).stdout
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines[1:4]] == ["memory", "stream", "cache"]
    assert lines[-1].startswith("ratio stream/memory=")
