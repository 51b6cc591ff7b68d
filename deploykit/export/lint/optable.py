"""The ONNX-TensorRT parser's operator table (deploykit/data/trt_onnx_ops.psv), per TensorRT version.

    >>> table = OpTable.load()
    >>> table.support("LayerNormalization", "8.5")     # "N"
    >>> table.restriction("Slice", "8.6")               # "axes must be an initializer"
"""

from __future__ import annotations

import dataclasses
import functools
from importlib import resources
from typing import Optional

# `--trt-version` value -> the table column that documents it (the parser docs exist per GA branch).
TRT_VERSIONS = {"8.5": "8.5", "8.6": "8.6", "10": "10.1", "11": "11.1"}
COLUMNS = ("11.1", "10.1", "8.6", "8.5")  # newest first, as in the file
# Default-domain opsets each parser reads (tensorrt_facts.md section 1).
OPSETS = {"11.1": (9, 24), "10.1": (9, 20), "8.6": (7, 17), "8.5": (7, 17)}
DATA_FILE = "trt_onnx_ops.psv"


@dataclasses.dataclass(frozen=True)
class OpRow:
    """One operator: support mark per column, the 11.1 type list, restriction text per column."""

    op: str
    support: dict
    types: tuple[str, ...]
    restrictions: dict


@dataclasses.dataclass(frozen=True)
class OpTable:
    rows: dict
    source: str

    @classmethod
    @functools.lru_cache(maxsize=1)
    def load(cls) -> "OpTable":
        text = resources.files("deploykit").joinpath("data", DATA_FILE).read_text()
        source = " ".join(line[1:].strip() for line in text.splitlines()[:3] if line.startswith("#"))
        rows = {}
        lines = [l for l in text.splitlines() if l.strip() and not l.startswith("#")]
        for line in lines[1:]:  # the first is the header
            main, _, older = line.partition("||")
            cells = [c.strip() for c in main.split("|")]
            op, marks, types, restriction = cells[0], cells[1:5], cells[5], "|".join(cells[6:]).strip()
            texts = {"11.1": restriction}
            if older.strip():
                version, _, rest = older.strip().partition(":")
                texts[version.strip()] = rest.strip()
            rows[op] = OpRow(op, dict(zip(COLUMNS, marks)), tuple(t.strip() for t in types.split(",") if t.strip()),
                             texts)
        return cls(rows, source)

    def support(self, op: str, column: str) -> str:
        """"Y", "N" or "-" (not listed; also for ops missing from the table)."""
        row = self.rows.get(op)
        return row.support.get(column, "-") if row else "-"

    def types(self, op: str) -> tuple[str, ...]:
        row = self.rows.get(op)
        return row.types if row else ()

    def restriction(self, op: str, column: str) -> Optional[str]:
        """The restriction text that holds for `column`: its own entry, else the nearest newer one's."""
        row = self.rows.get(op)
        if row is None:
            return None
        for col in COLUMNS[COLUMNS.index(column)::-1]:  # column, then newer ones up to 11.1
            if col in row.restrictions:
                return row.restrictions[col] or None
        return None
