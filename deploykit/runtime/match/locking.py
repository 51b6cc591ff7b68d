"""Changing a gallery file from several processes: an exclusive lock held from load to save."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Optional, Union

from ...errors import BadInputError
from .gallery import Gallery


@contextlib.contextmanager
def locked(path: Union[str, os.PathLike]) -> Iterator[None]:
    """Hold an exclusive lock on `<path>.lock` (POSIX `flock`) for the block."""
    import fcntl

    lock = Path(f"{path}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def update(path: Union[str, os.PathLike], metric: Optional[str] = None,
           new_metric: Optional[str] = None) -> Iterator[Gallery]:
    """Load (or start) the gallery at `path` under its lock; save it if the block succeeds.

    Args:
        metric: the metric the user asked for (default None): it must be an existing gallery's.
        new_metric: the metric of a new gallery when `metric` is None (e.g. the manifest's).
    """
    p = Path(path)
    with locked(p):
        if p.exists():
            g = Gallery.load(p)
            g.check_metric(metric, "gallery add")
        else:
            if (metric or new_metric) is None:
                raise BadInputError(f"gallery {p} is new and no metric was given; pass --metric")
            g = Gallery(metric or new_metric)
        yield g
        g.save(p)
