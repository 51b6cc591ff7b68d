"""File writes that never leave a half-written file and respect what they replace.

Rules (the README's "What a reader can rely on" repeats them):

- A regular file is replaced by rename: a temp file beside it, fsync, `os.replace`, fsync of the
  folder. A crash leaves the old file or the new one, never a mix.
- A new file gets `0666 & ~umask` (created with `os.open(..., 0o666)`, so the kernel applies the
  umask); a replaced regular file keeps its permission bits.
- A symlink at the target name is replaced by the new file; the link is not followed, so what it
  pointed to is never touched.
- Something that is not a regular file (a character device such as /dev/null, a FIFO, a socket)
  is never replaced: the bytes are written into it directly. A folder is refused.

Sets of files that must change together (an export, an engine build) go through `ArtifactSet`
(artifact_set.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

from .errors import BadInputError


def fsync_dir(folder: str | os.PathLike) -> None:
    """fsync a folder so a rename inside it survives a power cut (no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems (e.g. some network mounts) refuse fsync on a folder
    finally:
        os.close(fd)


def _new_file(folder: Path, prefix: str) -> Path:
    """Create an empty, exclusive temp file `0666 & ~umask` in `folder` and return its path."""
    for _ in range(16):
        p = folder / f".{prefix}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return p
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temp file in {folder}")


def _target_kind(final: Path) -> Optional[os.stat_result]:
    """lstat of `final` (None if absent); refuses a folder."""
    try:
        st = os.lstat(final)
    except (FileNotFoundError, NotADirectoryError):  # absent (its folder's own check names the problem)
        return None
    if stat.S_ISDIR(st.st_mode):
        raise BadInputError(f"cannot write {final}: it is a folder; give a file name inside it instead")
    return st


def ensure_folder(folder: str | os.PathLike, what: str = "--out") -> Path:
    """Create `folder` if needed and prove it is writable by creating and removing a temp file.

    Raises:
        BadInputError: the folder cannot be created or written, with the OS reason and the fix.
    """
    p = Path(folder)
    try:
        p.mkdir(parents=True, exist_ok=True)
        _new_file(p, "deploykit-write-test").unlink()
    except OSError as exc:
        raise BadInputError(f"cannot write into {what} {p} ({exc.strerror or exc}); choose a folder you can "
                            f"write to, or fix its permissions") from None
    return p


def ensure_file_writable(path: str | os.PathLike, what: str = "--out") -> Path:
    """Check, before any work, that a file can later be written at `path` (its folder writable)."""
    p = Path(path)
    st = _target_kind(p)
    if st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISLNK(st.st_mode):
        if not os.access(p, os.W_OK):
            raise BadInputError(f"cannot write {what} {p}: it is not writable; give another file name")
        return p
    ensure_folder(p.parent, f"the folder of {what}")
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; put its content at `path` only if the block succeeds.

    Args:
        path: the final file name. Its folder is created if missing. See the module rules for
            symlinks, devices and FIFOs.
    """
    final = Path(path)
    st = _target_kind(final)
    special = st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISLNK(st.st_mode)
    folder = final.parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp = _new_file(Path(tempfile.gettempdir()) if special else folder, final.name)
    try:
        yield tmp
        if special:  # a device or FIFO: write through, never replace it
            with open(tmp, "rb") as src, open(final, "wb") as dst:
                shutil.copyfileobj(src, dst)
            return
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if st is not None and stat.S_ISREG(st.st_mode):
            os.chmod(tmp, stat.S_IMODE(st.st_mode))  # a replaced file keeps its mode
        os.replace(tmp, final)
        fsync_dir(folder)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically (module rules)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented JSON to `path` atomically."""
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())
