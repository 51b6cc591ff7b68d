"""`ArtifactSet`: files that belong together (an export, an engine build) become visible together.

    >>> with ArtifactSet("engines", "gaitgl") as st:
    ...     write everything into st.path
    ... # on success every file is moved into engines/, manifests last

The set is the plain files of the stage (folders made there, e.g. compile caches, are dropped).

Protocol (why: a flat folder of well-known names cannot be swapped in one rename, and readers
and users expect `engines/gaitgl.int8.onnx`, not a symlink farm):

1. Every member is written into a stage folder `.deploykit-stage-*` inside the target folder (the
   same filesystem, so the later renames are atomic). The writer holds an flock on the stage's
   `.lock`; a killed writer loses it with its life.
2. Commit: each manifest in the stage gets `artifact_set.members` (the sha256 of every non-manifest
   member), every file is fsynced, then `COMMIT.json` (the rename order) is written and fsynced.
   Under an flock on the target folder, members are renamed in, manifests last; the folder is fsynced.
3. A refused or failed run deletes its stage: the previous set is untouched. A run killed before
   `COMMIT.json` leaves a stage the next run into that folder deletes; one killed during the renames
   leaves a complete stage the next run finishes (rolls forward), so the folder ends with the whole new set.
4. Readers: `Engine.load` checks the artifact's sha256 against its manifest and refuses while an
   interrupted commit naming it is pending, so a half-renamed set never loads.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import tempfile
from pathlib import Path
from typing import Iterator, Optional

from . import atomic
from .errors import BadInputError

try:  # POSIX; elsewhere sets are still staged and verified, only concurrent writers are not serialised
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

STAGE_PREFIX = ".deploykit-stage-"
COMMIT = "COMMIT.json"
LOCK = ".lock"
MANIFEST_SUFFIX = ".manifest.json"
FAULT_ENV = "DEPLOYKIT_FAULT_KILL"  # test hook: SIGKILL this process at the named point


def fault_point(name: str) -> None:
    """Kill the process with SIGKILL if `$DEPLOYKIT_FAULT_KILL` names this point (robustness tests)."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def _locked(path: Path, blocking: bool = True) -> Iterator[bool]:
    """flock `path` (a folder or a file); yields whether the lock was taken."""
    if fcntl is None:
        yield True
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def is_stage(folder: str | os.PathLike) -> bool:
    p = Path(folder)
    return p.name.startswith(STAGE_PREFIX) and (p / LOCK).exists()


def pending_commits(folder: str | os.PathLike) -> list[tuple[Path, list[str]]]:
    """Stages in `folder` that hold a complete, not yet moved set: `(stage, names)`."""
    out = []
    for st in sorted(Path(folder).glob(f"{STAGE_PREFIX}*/{COMMIT}")):
        try:
            out.append((st.parent, list(json.loads(st.read_text())["order"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def recover(folder: str | os.PathLike) -> list[str]:
    """Finish or delete the stages of dead writers in `folder`; returns what was done, one line each."""
    done = []
    for st in sorted(Path(folder).glob(f"{STAGE_PREFIX}*")):
        if not st.is_dir():
            continue
        lock = st / LOCK
        if lock.exists():
            with _locked(lock, blocking=False) as free:
                if not free:
                    continue  # its writer is alive
                if (st / COMMIT).is_file():
                    order = json.loads((st / COMMIT).read_text())["order"]
                    _move(st, Path(folder), order)
                    done.append(f"finished the interrupted commit of {', '.join(order)}")
        shutil.rmtree(st, ignore_errors=True)
        done.append(f"removed {st.name}")
    return done


def _check_targets(folder: Path, names: list[str]) -> None:
    for n in names:
        try:
            st = os.lstat(folder / n)
        except FileNotFoundError:
            continue
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            raise BadInputError(f"cannot replace {folder / n}: it is not a regular file (a folder, device or FIFO); "
                                f"move it away or write the artifacts into another --out folder")


def _move(stage: Path, folder: Path, order: list[str]) -> None:
    """Rename the stage's members into `folder` in `order`; members already moved are skipped."""
    for i, name in enumerate(order, 1):
        src, dst = stage / name, folder / name
        if not src.exists():
            continue
        try:
            old = os.lstat(dst)
            if stat.S_ISREG(old.st_mode):
                os.chmod(src, stat.S_IMODE(old.st_mode))  # a replaced file keeps its mode
        except FileNotFoundError:
            pass
        os.replace(src, dst)
        fault_point(f"commit:{i}")
    atomic.fsync_dir(folder)


class ArtifactSet:
    """Stage files in `folder`/.deploykit-stage-LABEL.*; commit them together on a clean exit.

    Attributes:
        folder: the target folder (created and checked writable on enter).
        path: the stage folder to write members into (valid inside the `with`).
        recovered: what the recovery of earlier interrupted runs did.
    """

    def __init__(self, folder: str | os.PathLike, label: str = "set", what: str = "--out") -> None:
        self.folder = Path(folder)
        self.label = label
        self.what = what
        self.path: Optional[Path] = None
        self.recovered: list[str] = []
        self._lock_fd: Optional[int] = None

    def final(self, p: str | os.PathLike) -> Path:
        """Where a staged member will be after the commit."""
        return self.folder / Path(p).name

    def __enter__(self) -> "ArtifactSet":
        atomic.ensure_folder(self.folder, self.what)
        with _locked(self.folder):
            self.recovered = recover(self.folder)
            self.path = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{self.label}.", dir=self.folder))
            self._lock_fd = os.open(self.path / LOCK, os.O_CREAT | os.O_RDWR, 0o600)
            if fcntl is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._commit()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
            shutil.rmtree(self.path, ignore_errors=True)

    def _commit(self) -> None:
        from . import manifest as mf

        files = sorted(p for p in self.path.iterdir() if p.is_file() and p.name not in (LOCK, COMMIT)
                       and not p.name.startswith("."))
        data = [p for p in files if not p.name.endswith(MANIFEST_SUFFIX)]
        mans = [p for p in files if p.name.endswith(MANIFEST_SUFFIX)]
        shas = {p.name: mf.sha256_file(p) for p in data}
        for m in mans:  # the manifest names every member with its sha256
            obj = json.loads(m.read_text())
            obj["artifact_set"] = {"members": shas}
            m.write_text(json.dumps(obj, indent=2) + "\n")
        for p in files:
            with open(p, "rb+") as fh:
                os.fsync(fh.fileno())
        order = [p.name for p in data + mans]
        _check_targets(self.folder, order)
        (self.path / COMMIT).write_text(json.dumps({"order": order}))
        with open(self.path / COMMIT, "rb+") as fh:
            os.fsync(fh.fileno())
        atomic.fsync_dir(self.path)
        fault_point("staged")
        with _locked(self.folder):
            _move(self.path, self.folder, order)


@contextlib.contextmanager
def staged(folder: str | os.PathLike, label: str, what: str = "--out") -> Iterator[tuple[Path, "callable"]]:
    """`(write_dir, to_final)`: a new ArtifactSet, or `folder` itself when it already is a stage (nested use)."""
    if is_stage(folder):
        yield Path(folder), (lambda p: Path(p))
        return
    with ArtifactSet(folder, label, what) as st:
        yield st.path, st.final


def verify_members(manifest_path: str | os.PathLike) -> list[str]:
    """Members of the manifest's set that are present but differ from it: one line each (empty: consistent)."""
    from . import manifest as mf

    p = Path(manifest_path)
    members = (json.loads(p.read_text()).get("artifact_set") or {}).get("members") or {}
    bad = []
    for name, sha in members.items():
        f = p.parent / name
        if f.is_file() and mf.sha256_file(f) != sha:
            bad.append(f"{name}: sha256 differs from {p.name}")
    return bad
