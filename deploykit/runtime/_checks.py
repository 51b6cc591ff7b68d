"""Input checks shared by the pre/post-processing modules.

Every public runtime function validates what it is given here, so a bad input fails with a
one-line `BadInputError` that names the argument, instead of an IndexError deep inside numpy.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ..errors import BadInputError


def array(x: Any, name: str, *, ndim: Optional[int | Sequence[int]] = None, dtype=None,
          finite: bool = True, min_size: int = 0, where: str = "") -> np.ndarray:
    """`x` as a numpy array, with its rank, numeric kind and finiteness checked.

    Args:
        x: anything np.asarray accepts.
        name: the argument's name, for the message.
        ndim: required rank (an int or a tuple of allowed ranks).
        dtype: convert to this dtype after the checks (None keeps it).
        finite: reject NaN/Inf (float inputs).
        min_size: minimum number of elements.
        where: the calling function, for the message.
    """
    ctx = f"{where}: " if where else ""
    try:
        a = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise BadInputError(f"{ctx}{name} cannot be read as an array ({exc}); pass a numpy array") from None
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise BadInputError(f"{ctx}{name} has dtype {a.dtype}; a numeric (bool, int or float) array is needed")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise BadInputError(f"{ctx}{name} has shape {list(a.shape)} ({a.ndim}-D); expected {want}-D")
    if a.size < min_size:
        raise BadInputError(f"{ctx}{name} has {a.size} elements (shape {list(a.shape)}); at least {min_size} needed")
    if dtype is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            a = a.astype(dtype, copy=False)  # before the finiteness check: float32 overflow becomes Inf
    if finite and a.dtype.kind == "f" and a.size and not np.isfinite(a).all():
        bad = int(a.size - np.isfinite(a).sum())
        conv = f" as {np.dtype(dtype)}" if dtype is not None else ""
        raise BadInputError(f"{ctx}{name} holds {bad} NaN/Inf value(s){conv}; clean the input (or check the "
                            f"engine output that produced it)")
    return a


def shape(a: np.ndarray, name: str, expected: Sequence[Optional[int]], where: str = "") -> None:
    """Check `a.shape` against `expected` (None = any size)."""
    ctx = f"{where}: " if where else ""
    if a.ndim != len(expected) or any(e is not None and e != s for e, s in zip(expected, a.shape)):
        want = "[" + ", ".join("*" if e is None else str(e) for e in expected) + "]"
        raise BadInputError(f"{ctx}{name} has shape {list(a.shape)}; expected {want}")


def size_hw(size: Any, name: str = "size", where: str = "") -> tuple[int, int]:
    """A (height, width) pair of positive ints."""
    ctx = f"{where}: " if where else ""
    try:
        h, w = (int(v) for v in size)
    except Exception:
        raise BadInputError(f"{ctx}{name} must be (height, width), got {size!r}") from None
    if h <= 0 or w <= 0:
        raise BadInputError(f"{ctx}{name} must be positive, got (height={h}, width={w})")
    return h, w


def choice(value: Any, name: str, allowed: Sequence[str], where: str = "") -> str:
    """`value` lower-cased if it is one of `allowed`."""
    ctx = f"{where}: " if where else ""
    v = str(value).lower()
    if v not in allowed:
        raise BadInputError(f"{ctx}{name}={value!r} is not one of {list(allowed)}")
    return v


def pairs(flip_pairs: Any, num_joints: int, where: str = "") -> list[tuple[int, int]]:
    """Joint flip pairs as (a, b) tuples inside [0, num_joints)."""
    ctx = f"{where}: " if where else ""
    out = []
    for p in flip_pairs or ():
        try:
            a, b = (int(v) for v in p)
        except Exception:
            raise BadInputError(f"{ctx}flip pair {p!r} is not a pair of joint indices") from None
        if not (0 <= a < num_joints and 0 <= b < num_joints):
            raise BadInputError(f"{ctx}flip pair {(a, b)} is outside the {num_joints} joints; pass pairs for "
                                f"this skeleton (COCO: deploykit.runtime.pose.COCO_FLIP_PAIRS)")
        out.append((a, b))
    return out
