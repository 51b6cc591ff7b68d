import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DEPLOYKIT_SHARED", ROOT.parent / "shared"))
UPSTREAM_KEYS = SHARED / "model_facts" / "upstream_keys"


@pytest.fixture(scope="session")
def upstream_keys_dir() -> Path:
    if not UPSTREAM_KEYS.is_dir():
        pytest.skip(f"upstream key lists not found at {UPSTREAM_KEYS} (set DEPLOYKIT_SHARED)")
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
