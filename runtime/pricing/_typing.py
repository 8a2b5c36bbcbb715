"""Type aliases shared by the numeric modules of ``opl.runtime``.

Every pricing function takes scalars or numpy arrays that broadcast together and
returns a ``float`` for all-scalar input, an array otherwise; these aliases name
those two sides so signatures stay readable.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = ["ArrayLike", "BoolLike", "FloatArray", "BoolArray", "FloatOrArray", "ExerciseStyle"]

#: A number or anything numpy turns into a float array (lists, arrays).
ArrayLike: TypeAlias = float | npt.ArrayLike
#: A flag or a boolean array (``is_call``), broadcast like the numbers.
BoolLike: TypeAlias = bool | npt.ArrayLike
FloatArray: TypeAlias = npt.NDArray[np.float64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
#: What the pricers return: a float for scalar input, an array otherwise.
FloatOrArray: TypeAlias = float | FloatArray
#: Exercise styles the pricers know (the rule packs use the same spelling).
ExerciseStyle: TypeAlias = Literal["european", "american"]
