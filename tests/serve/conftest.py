"""What the tests against a real tritonserver share: the serve venv (scripts/serve_env.sh makes it; the
pytriton stub needs the system's python3.11) and the environment its subprocesses run in."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVE_PY = Path(os.environ.get("DEPLOYKIT_SERVE_VENV", ROOT / ".venv-serve")) / "bin" / "python"


@pytest.fixture(scope="session")
def serve_py() -> Path:
    """The serve venv's python; a missing one fails (not skips): CI's scripts/test.sh always makes it."""
    if not SERVE_PY.exists():
        pytest.fail(f"{SERVE_PY} missing: run `bash scripts/serve_env.sh` (scripts/test.sh does)")
    return SERVE_PY


@pytest.fixture(scope="session")
def serve_env() -> dict:
    """os.environ for a serve-venv subprocess: this checkout importable, one OpenMP thread, and no
    VIRTUAL_ENV (the project venv's would leak into the other interpreter)."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return env
