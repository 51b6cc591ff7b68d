"""Writes that respect their target (issue 11 item 3) and artifact sets that change together (item 1)."""

import json
import os
import stat
import threading

import pytest

from deploykit import artifact_set, atomic
from deploykit.errors import BadInputError


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_0666_minus_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic.write_bytes(tmp_path / "f.json", b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "f.json").st_mode) == mode


def test_a_replaced_file_keeps_its_mode(tmp_path):
    p = tmp_path / "gallery.npz"
    p.write_bytes(b"old")
    os.chmod(p, 0o640)
    atomic.write_bytes(p, b"new")
    assert p.read_bytes() == b"new" and stat.S_IMODE(os.stat(p).st_mode) == 0o640


def test_dev_null_is_written_through_and_stays_a_device():
    atomic.write_json("/dev/null", {"a": 1})
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_fifo_is_written_through_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    atomic.write_bytes(fifo, b"hello")
    reader.join(10)
    assert got == [b"hello"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_symlink_is_replaced_and_its_target_untouched(tmp_path):
    target = tmp_path / "target.txt"
    target.write_bytes(b"keep me")
    link = tmp_path / "out.txt"
    link.symlink_to(target)
    atomic.write_bytes(link, b"new")
    assert not link.is_symlink() and link.read_bytes() == b"new" and target.read_bytes() == b"keep me"


def test_a_folder_at_the_target_is_refused(tmp_path):
    with pytest.raises(BadInputError, match="is a folder"):
        atomic.write_bytes(tmp_path, b"x")


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "m.json"
    p.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(p) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert p.read_bytes() == b"old" and sorted(x.name for x in tmp_path.iterdir()) == ["m.json"]


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(atomic, "fsync_dir", lambda d: seen.append(os.fspath(d)))
    atomic.write_bytes(tmp_path / "a.bin", b"x")
    assert seen == [os.fspath(tmp_path)]


def test_an_unwritable_folder_is_refused_in_one_line(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(BadInputError, match=r"cannot write into --out .*file/sub .*choose a folder"):
        atomic.ensure_folder(tmp_path / "file" / "sub")


# -- artifact sets --------------------------------------------------------------------------------

def _write_set(folder, tag, fail=False):
    with artifact_set.ArtifactSet(folder, "m") as st:
        (st.path / "m.onnx").write_bytes(tag.encode())
        (st.path / "m.ranges.json").write_text(json.dumps({"tag": tag}))
        (st.path / "m.manifest.json").write_text(json.dumps({"tag": tag}))
        if fail:
            raise BadInputError("refused")


def test_a_committed_set_names_every_member_with_its_sha256(tmp_path):
    _write_set(tmp_path, "a")
    man = json.loads((tmp_path / "m.manifest.json").read_text())
    assert sorted(man["artifact_set"]["members"]) == ["m.onnx", "m.ranges.json"]
    assert artifact_set.verify_members(tmp_path / "m.manifest.json") == []
    assert artifact_set.verify_members.__doc__ and not list(tmp_path.glob(".deploykit-stage-*"))


def test_a_refused_run_leaves_the_previous_set_untouched(tmp_path):
    _write_set(tmp_path, "old")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(BadInputError):
        _write_set(tmp_path, "new", fail=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_device_at_a_member_name_is_refused_before_any_rename(tmp_path):
    _write_set(tmp_path, "old")
    (tmp_path / "m.ranges.json").unlink()
    os.mkfifo(tmp_path / "m.ranges.json")
    with pytest.raises(BadInputError, match="not a regular file"):
        _write_set(tmp_path, "new")
    assert (tmp_path / "m.onnx").read_bytes() == b"old" and stat.S_ISFIFO(os.stat(tmp_path / "m.ranges.json").st_mode)


def test_a_dead_writers_incomplete_stage_is_removed_by_the_next_run(tmp_path):
    stage = tmp_path / f"{artifact_set.STAGE_PREFIX}m.dead"
    stage.mkdir()
    (stage / artifact_set.LOCK).touch()
    (stage / "m.onnx").write_bytes(b"half")
    _write_set(tmp_path, "new")
    assert not stage.exists() and (tmp_path / "m.onnx").read_bytes() == b"new"


def test_a_dead_writers_complete_stage_is_rolled_forward(tmp_path):
    _write_set(tmp_path, "old")
    stage = tmp_path / f"{artifact_set.STAGE_PREFIX}m.dead"
    stage.mkdir()
    (stage / artifact_set.LOCK).touch()
    (stage / "m.manifest.json").write_text(json.dumps({"tag": "new"}))  # m.onnx already moved: killed mid-commit
    (tmp_path / "m.onnx").write_bytes(b"new")
    (stage / artifact_set.COMMIT).write_text(json.dumps({"order": ["m.onnx", "m.manifest.json"]}))
    assert artifact_set.pending_commits(tmp_path)
    done = artifact_set.recover(tmp_path)
    assert json.loads((tmp_path / "m.manifest.json").read_text())["tag"] == "new" and not stage.exists()
    assert any("finished" in d for d in done)


def test_a_live_writers_stage_is_left_alone(tmp_path):
    with artifact_set.ArtifactSet(tmp_path, "m") as st:
        (st.path / "m.onnx").write_bytes(b"x")
        artifact_set.recover(tmp_path)  # another run starting now must not delete our stage
        assert st.path.exists()
    assert (tmp_path / "m.onnx").read_bytes() == b"x"
