"""The benchmark scripts still run (tiny sizes, no timing asserted): they import the engine's public API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("script,args,printed", [
    ("bench_simulate.py", ["--paths", "200", "--sample", "3", "--memory", "200,400", "--repeat", "1", "--skip", "whole,first,main"],
     "faster"),
    ("bench_pricing.py", ["--n", "2000", "--loop", "50", "--tree", "5"], "faster"),
    ("bench_paths.py", ["--paths", "300", "--months", "2"], "faster"),
    ("bench_marks.py", ["--paths", "300", "--repeat", "1"], "faster"),
    ("bench_steps.py", ["--paths", "300", "--stride", "5", "--repeat", "1"], "faster"),
    ("bench_margin.py", ["--paths", "300", "--repeat", "1"], "reference"),
    ("bench_marks.py", ["--captured", "300", "--stride", "5", "--repeat", "1"], "captured calls"),
    # Slow: its two empty compiled receivers of 64 and 166 arguments compile at every run (~1.5 min CPU).
    pytest.param("bench_round.py", ["--paths", "100", "--stride", "7", "--repeat", "1"], "a call saved",
                 marks=pytest.mark.slow),
])
def test_benchmark_runs_at_a_tiny_size(script, args, printed):
    """Every script prints its ratios against a same-run baseline (``faster``; the margin's table, a ratio to
    the reference a row; the round's dispatch, the microseconds a call its structrefs save); ``--captured`` without
    ``--against`` its kernel's ns a mark on the real calls."""
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert printed in done.stdout


@pytest.mark.slow
def test_the_dask_benchmark_runs_at_a_tiny_size():
    """Slow: it starts two local Dask clusters (1 and 2 worker processes)."""
    done = subprocess.run([sys.executable, str(BENCH / "bench_dask.py"), "--paths", "300", "--tasks", "20",
                           "--skip", "loop"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "faster" in done.stdout and "bit-identical: True" in done.stdout and "extrapolation" in done.stdout


@pytest.mark.slow
def test_the_dask_benchmarks_loop_case_runs_at_a_tiny_size():
    """Slow: three loop runs (--batch 1 and 2 on two workers, --batch 1 on one), each on a cluster of its own."""
    done = subprocess.run([sys.executable, str(BENCH / "bench_dask.py"), "--skip", "simulate", "--iterations", "2",
                           "--loop-paths", "200", "--one-worker"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "faster" in done.stdout and "CPU of the rounds" in done.stdout
