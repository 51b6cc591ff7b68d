"""Lint findings and the report: a readable table, JSON, and the exit code."""

from __future__ import annotations

import dataclasses
SEVERITIES = ("error", "warning", "info")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One thing the lint found.

    Attributes:
        severity: "error" (an engine build fails, or with --fp16 the engine computes inf/NaN),
            "warning" (builds, but costs speed or precision) or "info".
        code: stable identifier, e.g. "op-unsupported", "dynamic-dim", "fp16-overflow".
        message: one sentence: what, given vs allowed.
        op: the op type concerned ("" for graph-level findings).
        node: the node name ("" for graph-level findings).
        tensor: the tensor concerned, if any.
        hint: what to try.
    """

    severity: str
    code: str
    message: str
    op: str = ""
    node: str = ""
    tensor: str = ""
    hint: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"Finding {self.code}: severity {self.severity!r} is not one of {SEVERITIES}")

    def to_json(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v != ""}


@dataclasses.dataclass
class LintReport:
    """Everything `deploykit check` found for one model and target.

    Attributes:
        model: the model path (or name).
        trt_version: the `--trt-version` asked for.
        column: the operator-table column used for it.
        findings: all findings, errors first.
        summary: counts and facts per section (nodes, DLA eligibility, FP16 ranges).
        details: long lists for the JSON only (the layers that leave the DLA, every tensor's range).
    """

    model: str
    trt_version: str
    column: str
    findings: list[Finding]
    summary: dict
    details: dict = dataclasses.field(default_factory=dict)

    def count(self, severity: str) -> int:
        return sum(f.severity == severity for f in self.findings)

    @property
    def passed(self) -> bool:
        """True when nothing blocks an engine build (no error)."""
        return self.count("error") == 0

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_json(self) -> dict:
        return {"model": self.model, "trt_version": self.trt_version, "table_column": self.column,
                "passed": self.passed, "errors": self.count("error"), "warnings": self.count("warning"),
                "summary": self.summary, "findings": [f.to_json() for f in self.findings], **self.details}

    def table(self) -> str:
        """A plain-text table of the findings and a verdict line."""
        head = (f"deploykit check {self.model}: TensorRT {self.trt_version} "
                f"(ONNX-TensorRT parser table {self.column})")
        lines = [head]
        for key, value in self.summary.items():
            lines.append(f"  {key}: {value}")
        if self.findings:
            cols = [("severity", 8), ("code", 18), ("op", 18), ("node / tensor", 40)]
            lines.append("")
            lines.append("  ".join(name.ljust(w) for name, w in cols) + "  message")
            for f in self.findings:
                where = f.node or f.tensor
                if f.node and f.tensor:
                    where = f"{f.node} -> {f.tensor}"
                cells = [f.severity, f.code, f.op, _clip(where, 40)]
                msg = f.message + (f" Try: {f.hint}" if f.hint else "")
                lines.append("  ".join(c.ljust(w) for c, (_, w) in zip(cells, cols)) + "  " + msg)
        verdict = ("PASS: nothing blocks an engine build" if self.passed
                   else f"FAIL: {self.count('error')} error(s) block an engine build")
        lines += ["", f"{verdict} ({self.count('error')} errors, {self.count('warning')} warnings, "
                      f"{self.count('info')} info)"]
        return "\n".join(lines)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3):]
