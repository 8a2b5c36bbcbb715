"""The marks' log, exp and normal CDF written as vectorisable arithmetic (opl.runtime.engine.kernels.vecmath).

Each fast function is held against the C library (math.log, math.exp; the normal CDF against Cephes'
arrangement on the library's erf/erfc, which the marks used before, and against scipy.special.ndtr, the
reference marker's) over dense grids and the tails, against its plain scalar twin bit for bit, and on the
special values; and the loops of them are checked to compile to vector code with no library call left.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import scipy.special

from opl.runtime.engine import kernels
from opl.runtime.engine.kernels import vecmath as vm

pytestmark = pytest.mark.skipif(not kernels.available(), reason="numba is not installed")

_EPS = 2.0**-53  # half an ulp of 1


def _ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Distance in units in the last place between finite doubles of the same sign (0 where both are equal)."""
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    return np.where(same, 0, np.abs(got.view(np.int64) - want.view(np.int64)))


def _fast(kernel, x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    kernel(np.ascontiguousarray(x, dtype=float), out)
    return out


def _library(fn, x: np.ndarray) -> np.ndarray:
    return np.array([fn(float(v)) for v in x])


def _log_points() -> np.ndarray:
    rng = np.random.default_rng(11)
    return np.concatenate([
        np.exp(np.linspace(-744.0, 709.7, 200_001)),  # every binade, subnormals included
        rng.uniform(0.5, 2.0, 100_000),  # the reduction's boundaries at sqrt(1/2) and sqrt(2), fdlibm's window
        1.0 + rng.uniform(-1e-6, 1e-6, 20_000),  # log near 0, where f is tiny
        [5e-324, 1e-310, 2.2250738585072014e-308, np.nextafter(1.0, 0.0), 1.0, np.nextafter(1.0, 2.0),
         math.sqrt(0.5), math.sqrt(2.0), 1.7976931348623157e308],
    ])


def test_log_is_within_one_ulp_of_the_library_and_its_scalar_twin_bit_for_bit():
    x = _log_points()
    got = _fast(vm.log_array, x)
    assert _ulps(got, _library(math.log, x)).max() <= 1
    sample = x[::37]
    assert np.array_equal(got[::37], _library(vm.log_reference, sample))
    assert _ulps(_library(vm.log_reference, sample), _library(math.log, sample)).max() <= 1


def test_log_of_special_values_is_the_librarys():
    x = np.array([0.0, -0.0, -1.0, -5e-324, np.inf, -np.inf, np.nan])
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.log(x)
    np.testing.assert_array_equal(_fast(vm.log_array, x), want)
    np.testing.assert_array_equal(_library(vm.log_reference, x), want)


def test_exp_is_within_one_ulp_of_the_library_and_its_scalar_twin_bit_for_bit():
    rng = np.random.default_rng(12)
    x = np.concatenate([np.linspace(-745.1, 709.78, 300_001), rng.uniform(-1.0, 1.0, 100_000),
                        rng.uniform(-1e-9, 1e-9, 10_000), [0.0, -0.0, 709.782712893384, -708.39, -744.44]])
    got = _fast(vm.exp_array, x)
    assert _ulps(got, _library(math.exp, x)).max() <= 1
    sample = x[::37]
    assert np.array_equal(got[::37], _library(vm.exp_reference, sample))


def test_exp_of_special_values_is_the_librarys():
    x = np.array([709.79, 710.0, 1e300, np.inf, -745.2, -746.0, -1e300, -np.inf, np.nan])
    with np.errstate(over="ignore"):
        want = np.exp(x)
    np.testing.assert_array_equal(_fast(vm.exp_array, x), want)
    np.testing.assert_array_equal(_library(vm.exp_reference, x), want)


def _ndtr_points() -> np.ndarray:
    rng = np.random.default_rng(13)
    return np.concatenate([np.linspace(-40.0, 40.0, 400_001), rng.normal(0.0, 2.0, 100_000),
                           np.sqrt(2.0) * np.array([np.nextafter(1.0, 0.0), 1.0, 8.0, np.nextafter(8.0, 0.0)])])


def test_ndtr_keeps_the_librarys_relative_accuracy_in_both_tails():
    a = _ndtr_points()
    got = _fast(vm.ndtr_array, a)
    want = _library(vm.ndtr_library, a)
    live = want > 1e-300  # below, the results are subnormal (or 0) and carry fewer digits
    assert np.max(np.abs(got[live] - want[live]) / want[live]) <= 2e-15  # measured 1.6e-15
    sample = a[::41]
    assert np.array_equal(got[::41], _library(vm.ndtr_reference, sample))


def test_ndtr_agrees_with_scipys_up_to_its_rounded_square():
    # scipy's ndtr (Cephes) computes exp(-z*z) from the rounded z*z: in the tail it is off the true value by
    # up to ~z^2 ulps, where this one (z^2 split exactly) is within an ulp or two; near z = 1 both carry the
    # cancellation of 1 - erf(z) (rounded differently by scipy's build). The bound: 16 (1 + z^2) half-ulps relative
    # (measured 12.6 (1 + z^2) just below z = 1, 6.4 (1 + z^2) elsewhere: 1e-15 near 0, 4.3e-13 at ndtr = 1e-300).
    a = _ndtr_points()
    got, want = _fast(vm.ndtr_array, a), scipy.special.ndtr(a)
    live = want > 1e-300
    z = np.abs(a[live]) / np.sqrt(2.0)
    assert np.all(np.abs(got[live] - want[live]) / want[live] <= 16 * (1 + z * z) * _EPS)
    assert np.array_equal(got == 0.0, want == 0.0)  # Cephes' underflow where z^2 > log(DBL_MAX), and only there


def test_ndtr_of_special_values_is_scipys():
    a = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -38.5, 38.5, -1e300, 1e300, 5e-324])
    want = scipy.special.ndtr(a)
    np.testing.assert_array_equal(_fast(vm.ndtr_array, a), want)
    np.testing.assert_array_equal(_library(vm.ndtr_reference, a), want)


@pytest.mark.parametrize("name", ["log_array", "exp_array", "ndtr_array"])
def test_the_loops_compile_to_vector_code_without_library_calls(name):
    # The point of these functions: a loop of them is vectorised. Compiled afresh (cached code cannot be inspected).
    import numba

    fn = numba.njit(getattr(vm, name).py_func, error_model="numpy")
    x = np.linspace(0.5, 2.0, 64)
    fn(x, np.empty_like(x))
    llvm = next(iter(fn.inspect_llvm().values()))
    assert re.search(r"<\d+ x double>", llvm)
    assert not re.search(r"call .*@(log|exp|erf|erfc)\b", llvm)
