import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The upstream projects' state-dict keys and shapes (a JSON list of [key, shape] per model), copied
# into the repository so a plain clone can check the strict-load claim.
UPSTREAM_KEYS = ROOT / "tests" / "data" / "upstream_keys"


@pytest.fixture(scope="session")
def upstream_keys_dir() -> Path:
    assert UPSTREAM_KEYS.is_dir(), f"{UPSTREAM_KEYS} is missing from the checkout"
    return UPSTREAM_KEYS


# Python source that makes `import torch` (and deploykit.models) fail in a subprocess: the runtime and
# calibration must work on a machine without PyTorch.
BLOCK_TORCH = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch.") or name.startswith("deploykit.models"):
            raise ImportError(f"blocked import of {name}")
sys.meta_path.insert(0, _Block())
"""


def run_cli(*args: str, cwd=None):
    """Run the deploykit CLI in a subprocess (as a user would) and return the CompletedProcess."""
    import subprocess

    return subprocess.run([sys.executable, "-m", "deploykit.cli", *args], capture_output=True, text=True, cwd=cwd)


# The tests against a real tritonserver (tests/serve): the serve venv that scripts/serve_env.sh makes (the
# pytriton stub needs the system's python3.11) and the environment its subprocesses run in.
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
