"""The model zoo as plain data, for the commands that must run without PyTorch.

`deploykit list` on a runtime-only install (a Jetson, a server) cannot import `deploykit.models`
(which needs torch), so the registry is also written to `deploykit/data/zoo.json`. A test holds the
file equal to the live registry, and `python -m deploykit.zoo_index` rewrites it after a model is
added or changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from . import atomic

INDEX = Path(__file__).with_name("data") / "zoo.json"


def live_rows() -> list[dict]:
    """One row per registered model, from the registry itself (needs torch)."""
    from . import models

    rows = []
    for name in models.names():
        s = models.spec(name)
        rows.append({"name": name, "family": s.family, "upstream": s.upstream,
                     "inputs": [i.to_json() for i in s.input_specs()], "outputs": [o.name for o in s.outputs]})
    return rows


def rows(family: Optional[str] = None) -> tuple[list[dict], str]:
    """(rows, source): the live registry when torch is importable, else the committed index."""
    try:
        data, source = live_rows(), "registry"
    except ImportError:  # no torch: a runtime-only install
        data, source = json.loads(INDEX.read_text()), f"{INDEX.name} (torch not installed)"
    return [r for r in data if family is None or r["family"] == family], source


def write_index(path: Path = INDEX) -> Path:
    """Rewrite the committed index from the live registry."""
    atomic.write_bytes(path, (json.dumps(live_rows(), indent=1) + "\n").encode())
    return path


if __name__ == "__main__":
    print(f"wrote {write_index()}")
