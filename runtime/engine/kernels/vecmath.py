"""log, exp and the normal CDF as plain arithmetic the compiler can vectorise (the marks' hot loops).

The C library's ``log``, ``exp`` and ``erf``/``erfc`` are opaque calls: LLVM keeps a loop that makes them
scalar, one element a call, and they were ~60% of a mark's CPU. The functions here are the same classical
algorithms written as straight-line arithmetic on the float's bits, every branch of the originals turned
into candidates computed side by side and a select, so a loop of them runs on the vector unit:

- `log`: fdlibm's ``e_log.c`` (reduction to [sqrt(1/2), sqrt(2)), its degree-14 odd polynomial), < 1 ulp;
- `exp` / `exp_sum`: fdlibm's ``e_exp.c`` (round-to-nearest k ln2 reduction, its rational form), < 1 ulp;
- `ndtr`: Cephes' ``ndtr`` (scipy.special.ndtr's algorithm and coefficients) with one change: its
  exp(-z^2) is computed from z^2 split exactly into a high and a low part (as glibc's ``erfc`` and
  Cephes' own ``expx2`` do), not from the rounded product, so the tail keeps its relative accuracy.

No fastmath: every operation is IEEE rounded as written, so a value does not depend on the vector width,
the thread or the process computing it. Each fast function has a plain scalar twin (``*_reference``,
Python on `struct` bits, the originals' branches kept) that the tests hold against the library and the
fast one against.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from opl.runtime.engine.kernels.base import njit

__all__ = ["exp", "exp_reference", "exp_sum", "log", "log_reference", "ndtr", "ndtr_library", "ndtr_reference"]

# -- constants (fdlibm, Sun Microsystems 1993; Cephes, S. L. Moshier 1984-1992) ------------------------------

_LN2_HI = 6.93147180369123816490e-01  # 0x3fe62e42fee00000: k * _LN2_HI is exact for |k| < 2**20
_LN2_LO = 1.90821492927058770002e-10  # 0x3dea39ef35793c76
_INV_LN2 = 1.44269504088896338700e+00
_TWO54 = 1.80143985094819840000e+16
_SQRT1_2_BITS = 0x3FE6A09E667F3BCD  # sqrt(1/2): the reduced log argument starts here
_TINY = 2.2250738585072014e-308  # the smallest normal double
_ROUND = 6755399441055744.0  # 1.5 * 2**52: x + _ROUND rounds x to an integer held in the low bits
_ROUND_BITS = 0x4338000000000000
_MAXLOG = 7.09782712893383996843e2  # log(DBL_MAX): Cephes' underflow threshold of exp(-z^2)
_SQRT1_2 = 1.0 / math.sqrt(2.0)

# log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)), s = f / (2 + f): fdlibm's Lg1..Lg7
_LG1, _LG2, _LG3, _LG4 = 6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01, \
    2.222219843214978396e-01
_LG5, _LG6, _LG7 = 1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01
# exp(r) = 1 + 2r / (2 - c), c = r - r^2 P(r^2): fdlibm's P1..P5
_P1, _P2, _P3, _P4, _P5 = (1.66666666666666019037e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05,
                           -1.65339022054652515390e-06, 4.13813679705723846039e-08)

# Cephes ndtr.c: erfc(x) = exp(-x^2) P(x)/Q(x) on [1, 8), exp(-x^2) R(x)/S(x) from 8 (Q, S monic), and
# erf(x) = x T(x^2)/U(x^2) on [0, 1) (U monic). R and S are padded to P's and Q's degree with leading zeros
# (and S's leading 1 moved down): Horner's first steps then give 0 exactly, then R's and S's own steps.
_ERFC_P = (2.46196981473530512524E-10, 5.64189564831068821977E-1, 7.46321056442269912687E0,
           4.86371970985681366614E1, 1.96520832956077098242E2, 5.26445194995477358631E2,
           9.34528527171957607540E2, 1.02755188689515710272E3, 5.57535335369399327526E2)
_ERFC_Q = (1.0, 1.32281951154744992508E1, 8.67072140885989742329E1, 3.54937778887819891062E2,
           9.75708501743205489753E2, 1.82390916687909736289E3, 2.24633760818710981792E3,
           1.65666309194161350182E3, 5.57535340817727675546E2)
_ERFC_R = (0.0, 0.0, 0.0, 5.64189583547755073984E-1, 1.27536670759978104416E0, 5.01905042251180477414E0,
           6.16021097993053585195E0, 7.40974269950448939160E0, 2.97886665372100240670E0)
_ERFC_S = (0.0, 0.0, 1.0, 2.26052863220117276590E0, 9.39603524938001434673E0, 1.20489539808096656605E1,
           1.70814450747565897222E1, 9.60896809063285878198E0, 3.36907645100081516050E0)
_ERF_T = (9.60497373987051638749E0, 9.00260197203842689217E1, 2.23200534594684319226E3,
          7.00332514112805075473E3, 5.55923013010394962768E4)
_ERF_U = (1.0, 3.35617141647503099647E1, 5.21357949780152679795E2, 4.59432382970980127987E3,
          2.26290000613890934246E4, 4.92673942608635921086E4)
# The numerators' and denominators' coefficient triples (erf, erfc to 8, erfc beyond), T and U padded to nine.
_NUM = tuple(zip((0.0,) * 4 + _ERF_T, _ERFC_P, _ERFC_R))
_DEN = tuple(zip((0.0,) * 3 + _ERF_U, _ERFC_Q, _ERFC_S))
_SPLIT = 65536.0  # z rounded down to a multiple of 2**-16: for z < 2**5 its square is exact (< 42 bits)


# -- plain scalar references (Python, the originals' branches) ----------------------------------------------

def _as_bits(x: float) -> int:
    return struct.unpack("<q", struct.pack("<d", x))[0]


def _from_bits(i: int) -> float:
    return struct.unpack("<d", struct.pack("<q", i))[0]


def _log1p_reduced(f: float, window: bool) -> float:
    """log(1 + f) less its k ln2 part, fdlibm's two forms (``window``: f far from 0, where f^2/2 is kept apart)."""
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7))) + w * (_LG2 + w * (_LG4 + w * _LG6))
    if window:
        hfsq = 0.5 * f * f
        return hfsq, s * (hfsq + r)
    return None, s * (f - r)


def log_reference(x: float) -> float:
    """Natural log, fdlibm's algorithm with its branches, on Python floats (the fast `log`'s scalar twin)."""
    if x != x or x < 0:
        return math.nan
    if x == 0:
        return -math.inf
    if x == math.inf:
        return math.inf
    k = 0
    if x < _TINY:  # subnormal: scaled up first
        x, k = x * _TWO54, -54
    tmp = _as_bits(x) - _SQRT1_2_BITS
    k += tmp >> 52
    iz = _as_bits(x) - ((tmp >> 52) << 52)
    f = _from_bits(iz) - 1.0
    dk = float(k)
    hx = (iz >> 32) & 0xFFFFF
    if 0x6147A <= hx <= 0x6B851:
        hfsq, t = _log1p_reduced(f, True)
        return dk * _LN2_HI - ((hfsq - (t + dk * _LN2_LO)) - f)
    _, t = _log1p_reduced(f, False)
    return dk * _LN2_HI - ((t - dk * _LN2_LO) - f)


def exp_reference(x: float, lo: float = 0.0) -> float:
    """exp(x + lo) (``lo`` a small correction of x, |lo| << 1), fdlibm's algorithm with its branches."""
    if x != x:
        return math.nan
    if x > 710.0:
        return math.inf
    if x < -1000.0:
        return 0.0
    k = round((x + lo) * _INV_LN2)  # round half to even, as the fast one's 1.5 * 2**52 trick
    hi = x - k * _LN2_HI
    low = k * _LN2_LO - lo
    r = hi - low
    t = r * r
    c = r - t * (_P1 + t * (_P2 + t * (_P3 + t * (_P4 + t * _P5))))
    y = 1.0 - ((low - (r * c) / (2.0 - c)) - hi)
    k1 = k >> 1
    return y * _from_bits((k1 + 1023) << 52) * _from_bits((k - k1 + 1023) << 52)


def _horner(x: float, coefficients) -> float:
    acc = 0.0
    for c in coefficients:
        acc = acc * x + c
    return acc


def ndtr_reference(a: float) -> float:
    """The standard normal CDF, Cephes' ndtr with its branches and an accurate exp(-z^2) (`ndtr`'s twin)."""
    if a != a:
        return math.nan
    x = a * _SQRT1_2
    z = abs(x)
    if z < _SQRT1_2:
        xx = x * x
        return 0.5 + 0.5 * (x * _horner(xx, _ERF_T) / _horner(xx, _ERF_U))
    if z < 1.0:
        zz = z * z
        erfc = 1.0 - z * _horner(zz, _ERF_T) / _horner(zz, _ERF_U)
    elif -z * z < -_MAXLOG:
        erfc = 0.0
    else:
        zh = math.floor(z * _SPLIT) / _SPLIT
        e = exp_reference(-zh * zh, -((z - zh) * (z + zh)))
        p, q = (_ERFC_P, _ERFC_Q) if z < 8.0 else (_ERFC_R, _ERFC_S)
        erfc = (e * _horner(z, p)) / _horner(z, q)
    y = 0.5 * erfc
    return 1.0 - y if x > 0 else y


def ndtr_library(a: float) -> float:
    """Cephes' ndtr on the C library's ``erf``/``erfc`` (accurate to about an ulp): what the marks called before
    `ndtr`, the oracle its tests and its benchmark hold it against (numba compiles it as it is)."""
    x = a * _SQRT1_2
    z = abs(x)
    if z < _SQRT1_2:
        return 0.5 + 0.5 * math.erf(x)
    y = 0.5 * math.erfc(z)
    return 1.0 - y if x > 0 else y


# -- the fast twins (numba, branch-free) ---------------------------------------------------------------------

if njit is not None:
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def _bits(typingctx, x):
        # A float64's IEEE bits as an int64: one register move, which the vectoriser keeps in vector registers
        # (a round trip through an int64 view of memory would cost a store and a load).
        if x != types.float64:
            return None

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], ir.IntType(64))

        return types.int64(types.float64), codegen

    @intrinsic
    def _float(typingctx, i):
        # The float64 whose IEEE bits an int64 holds (`_bits`' inverse).
        if i != types.int64:
            return None

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], ir.DoubleType())

        return types.float64(types.int64), codegen

    @njit(cache=True, inline="always", error_model="numpy")
    def log(x):
        """Natural log, < 1 ulp (fdlibm), branch-free: NaN, 0, negatives, subnormals and inf as the library."""
        sub = x < _TINY
        xs = x * _TWO54 if sub else x
        ix = _bits(xs)
        tmp = ix - _SQRT1_2_BITS
        e = tmp >> 52  # arithmetic: the exponent that brings the mantissa into [sqrt(1/2), sqrt(2))
        iz = ix - (e << 52)
        f = _float(iz) - 1.0
        dk = float(e - 54 if sub else e)
        s = f / (2.0 + f)
        z = s * s
        w = z * z
        r = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7))) + w * (_LG2 + w * (_LG4 + w * _LG6))
        hx = (iz >> 32) & 0xFFFFF
        hfsq = 0.5 * f * f
        # fdlibm keeps f^2/2 apart where |f| is large (the mantissa's window below sqrt(2) and above
        # sqrt(1/2)); both forms computed, one kept
        far = dk * _LN2_HI - ((hfsq - (s * (hfsq + r) + dk * _LN2_LO)) - f)
        near = dk * _LN2_HI - ((s * (f - r) - dk * _LN2_LO) - f)
        out = far if (hx >= 0x6147A) & (hx <= 0x6B851) else near
        out = out if x > 0.0 else (-math.inf if x == 0.0 else math.nan)
        return x if x == math.inf or x != x else out

    @njit(cache=True, inline="always", error_model="numpy")
    def exp_sum(x, lo):
        """exp(x + lo), ``lo`` a small correction of ``x`` (|lo| << 1, exp(-z^2) from z^2's exact parts),
        < 1 ulp (fdlibm's reduction with ``lo`` added to its low part), branch-free; NaN and +-inf as the
        library. x is clamped to [-1000, 1000] first: the result is then 0 or inf where it should be, and
        2^k stays a product of two normal powers of two."""
        xc = min(max(x, -1000.0), 1000.0)
        kr = (xc + lo) * _INV_LN2 + _ROUND  # round half to even to an integer in the low bits
        k = _bits(kr) - _ROUND_BITS
        dk = kr - _ROUND
        hi = xc - dk * _LN2_HI  # exact: dk * _LN2_HI has at most 31 + 11 bits, the difference is small
        low = dk * _LN2_LO - lo
        r = hi - low
        t = r * r
        c = r - t * (_P1 + t * (_P2 + t * (_P3 + t * (_P4 + t * _P5))))
        y = 1.0 - ((low - (r * c) / (2.0 - c)) - hi)
        # y 2^k as y 2^k1 2^k2: both factors normal for |k| < 2044, one rounding where the result is subnormal
        k1 = k >> 1
        out = y * _float((k1 + 1023) << 52) * _float((k - k1 + 1023) << 52)
        return x if x != x else out

    @njit(cache=True, inline="always", error_model="numpy")
    def exp(x):
        """exp(x), < 1 ulp, branch-free (`exp_sum` with no correction)."""
        return exp_sum(x, 0.0)

    @njit(cache=True, inline="always", error_model="numpy")
    def _pick(region, c):
        # The coefficient of ``region`` (0: erf's, 1: erfc's to 8, 2: erfc's beyond) of the triple ``c``.
        return c[0] if region == 0 else (c[1] if region == 1 else c[2])

    @njit(cache=True, inline="always", error_model="numpy")
    def _horner9(w, region, c):
        # Horner on nine coefficients, each its region's: one polynomial per element where Cephes' branches
        # evaluated one of three. The tables are padded with leading zeros (and a monic one's 1 moved down), so
        # the first steps give 0 exactly, then the table's own steps: the same bits as Cephes' polevl/p1evl.
        acc = _pick(region, c[0])
        acc = acc * w + _pick(region, c[1])
        acc = acc * w + _pick(region, c[2])
        acc = acc * w + _pick(region, c[3])
        acc = acc * w + _pick(region, c[4])
        acc = acc * w + _pick(region, c[5])
        acc = acc * w + _pick(region, c[6])
        acc = acc * w + _pick(region, c[7])
        return acc * w + _pick(region, c[8])

    @njit(cache=True, inline="always", error_model="numpy")
    def ndtr(a):
        """The standard normal CDF: Cephes' ndtr (scipy.special.ndtr's algorithm and coefficients) with an
        accurate exp(-z^2), branch-free: one rational function per element, its tables selected per region."""
        x = a * _SQRT1_2
        z = abs(x)
        region = 0 if z < 1.0 else (1 if z < 8.0 else 2)
        # erf(x) = x T(x^2)/U(x^2) below 1 (ndtr near 0, and erfc(z) = 1 - erf(z) on [sqrt(1/2), 1)); above,
        # erfc(z) = exp(-z^2) P(z)/Q(z), with -z^2 = -zh^2 - (z - zh)(z + zh) and zh^2 exact
        zc = min(z, 32.0)  # beyond, the result is 0 anyway (and an inf or NaN z stays out of the sums)
        zh = math.floor(zc * _SPLIT) / _SPLIT
        e = exp_sum(-zh * zh, -((zc - zh) * (zc + zh)))
        w = x * x if region == 0 else zc
        num = _horner9(w, region, _NUM)
        den = _horner9(w, region, _DEN)
        q = ((x if region == 0 else e) * num) / den
        erfc = 1.0 - abs(q) if region == 0 else (0.0 if -z * z < -_MAXLOG else q)
        y = 0.5 * erfc
        out = 0.5 + 0.5 * q if z < _SQRT1_2 else (1.0 - y if x > 0 else y)
        return a if a != a else out

    @njit(cache=True, error_model="numpy")
    def log_array(x, out):
        """`log` of each element of ``x`` into ``out`` (the tests' and the benchmark's loop)."""
        for i in range(x.shape[0]):
            out[i] = log(x[i])

    @njit(cache=True, error_model="numpy")
    def exp_array(x, out):
        """`exp` of each element of ``x`` into ``out``."""
        for i in range(x.shape[0]):
            out[i] = exp(x[i])

    @njit(cache=True, error_model="numpy")
    def ndtr_array(x, out):
        """`ndtr` of each element of ``x`` into ``out``."""
        for i in range(x.shape[0]):
            out[i] = ndtr(x[i])
