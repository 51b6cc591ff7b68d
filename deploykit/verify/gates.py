"""The gates table: what `deploykit parity` and the INT8 accuracy report require, per precision.

Every threshold is a figure, a comparison and a limit, with the reason for the limit beside it.
Output figures are measured over the held-out batch (`verify.heldout`), stacked `[N, ...]`:

- `cosine`: plain cosine of the flattened outputs (reported for every precision).
- `max_rel`: max |ref - out| / max |ref|.
- `centred_cosine`: cosine of `out - mean(ref)` with `ref - mean(ref)`, the mean over the held-out
  samples: the part of the output that depends on the input. Random-weight models put >99% of the
  output norm in a shared component (gaitgl: the input-dependent part is 0.4% of it), which lifts
  the plain cosine to 0.9999 even when the engine has lost the signal.
- `signal_nsr`: ||out - ref|| / ||ref - mean(ref)||, the engine's error against the input-dependent
  part. It also sees a wrong scale, which no cosine can.

Task figures (`verify.task_metrics`): nearest-neighbour / rank-1 / mAP agreement for embeddings,
PCK agreement and joint error for pose heatmaps that are peaked.
"""

from __future__ import annotations

import dataclasses
import math

from .compare import CheckResult

# the output gate below, in NSR terms: noise of norm <= 0.2 x signal turns the signal by at most
# asin(0.2), so centred cosine >= sqrt(1 - 0.2^2) = 0.9798; the two gates are one requirement.
INT8_NSR = 0.2
FP16_NSR = 0.1


@dataclasses.dataclass(frozen=True)
class Threshold:
    """`figure op limit`, and one line saying why the limit is where it is."""

    figure: str
    op: str
    limit: float
    why: str

    def judge(self, value: float) -> CheckResult:
        ok = (value >= self.limit) if self.op == ">=" else (value <= self.limit)
        return CheckResult(self.figure, float(value), self.limit, bool(ok and math.isfinite(value)), self.op)

    def line(self) -> str:
        return f"{self.figure} {self.op} {self.limit:g}: {self.why}"


@dataclasses.dataclass(frozen=True)
class Gates:
    """The gates of one precision.

    Attributes:
        output: judged on every output over the held-out batch.
        embedding: task gates of gait / re-ID models (embeddings).
        pose: task gates of pose models, judged on peaked reference joints only.
        min_samples: fewest held-out samples the gates can resolve (below: a clear error).
    """

    precision: str
    output: tuple[Threshold, ...]
    embedding: tuple[Threshold, ...] = ()
    pose: tuple[Threshold, ...] = ()
    min_samples: int = 1


_NN = Threshold("nn_agreement", ">=", 0.9,
                "issue 10's bar for gaitgl S8S8 (today 0.08); with 12 samples one flip (0.917) still passes")
_RANK1 = Threshold("rank1_difference", "<=", 0.01,
                   "|engine - FP32| rank-1 with labels, within 1 point (issue 10); widened to one query when the "
                   "held-out set has fewer than 100 queries, since a smaller set cannot resolve 1 point")
_MAP = Threshold("mAP_difference", "<=", 0.01, "|engine - FP32| mAP with labels, within 1 point (issue 10), widened "
                 "the same way")
_PCK = Threshold("pck_agreement", ">=", 0.99,
                 "share of peaked joints decoded within PCK@0.05 (0.05 x crop height) of FP32's: within 1 point")
_JOINT = Threshold("joint_error_hm_px", "<=", 1.0,
                   "mean decoded-joint shift in heatmap pixels: less than the heatmap's own resolution")

FP32 = Gates("fp32", output=(
    Threshold("cosine", ">=", 0.99999, "same float32 math in another order moves results ~1e-6; 100x margin"),
    Threshold("max_rel", "<=", 1e-4, "max error <= 1e-4 x max|ref|: ~100x the reordering error, while any wrong "
              "op costs > 1e-2"),
))
FP16 = Gates("fp16", output=(
    Threshold("cosine", ">=", 0.999, "11 significant bits per activation (issue 5's gate)"),
    Threshold("centred_cosine", ">=", round(math.sqrt(1 - FP16_NSR ** 2), 4),
              "the input-dependent part keeps its direction: equivalent to signal_nsr <= 0.1"),
    Threshold("signal_nsr", "<=", FP16_NSR, "half INT8's allowance: 11 significant bits against INT8's 8 should leave "
              "several times less noise; loose enough not to fail a sound FP16 build on rounding"),
), embedding=(_NN, _RANK1, _MAP), pose=(_PCK, _JOINT), min_samples=10)
INT8 = Gates("int8", output=(
    Threshold("centred_cosine", ">=", round(math.sqrt(1 - INT8_NSR ** 2), 4),
              "the input-dependent part keeps its direction (issue 10 asks 0.98 on trained proxies)"),
    Threshold("signal_nsr", "<=", INT8_NSR, "INT8 noise at most a fifth of the input-dependent signal; ModelOpt's "
              "gaitgl reaches 0.997 centred cosine (NSR ~0.08), today's default placement NSR > 1"),
), embedding=(_NN, _RANK1, _MAP), pose=(_PCK, _JOINT), min_samples=10)

# BF16 (OpenVINO on CPUs with AVX512_BF16/AMX) is gated like FP16, as the OpenVINO issue asks: 8
# significant bits instead of 11, but an exponent as wide as FP32's (no overflow), and measured here
# on gaitset at plain cosine 0.99999, well inside FP16's gates.
BF16 = dataclasses.replace(FP16, precision="bf16")

TABLE: dict[str, Gates] = {g.precision: g for g in (FP32, FP16, BF16, INT8)}
# mixed precisions are judged by their lowest part
ALIASES = {"int8+fp16": "int8"}

# "Peaked" pose heatmaps: the peak stands >= 6 std above the map's median. Noise over a 64x48 map
# reaches about sqrt(2 ln 3072) = 4 std at its maximum; a trained heatmap (a 2-D Gaussian of sigma
# 2 px) about 15. Random weights give flat maps (about 3-4), where argmax is decided by noise.
PEAK_MIN_STD = 6.0
# Query-based pose (PRTR) has no heatmap: a joint is "peaked" when its winning query's class
# probability is >= 0.5 (random weights give ~1/(J+1) = 0.06).
PEAK_MIN_PROB = 0.5
# the task gate applies when at least this share of reference joints is peaked; otherwise it is
# reported as not applicable (never as passed).
PEAKED_SHARE = 0.5
# without labels, the "identity" of a held-out sample is its FP32 k nearest neighbours (pseudo-labels)
PSEUDO_K = 3


def gates_for(precision: str) -> Gates:
    """The gates of `precision` ("fp32", "fp16", "bf16", "int8", "int8+fp16"; anything else is judged as fp32)."""
    return TABLE.get(ALIASES.get(precision, precision), FP32)


def difference_limit(t: Threshold, queries: int) -> float:
    """A difference gate's limit on a finite query set: its limit, or one query, whichever is larger."""
    return max(t.limit, 1.0 / max(int(queries), 1))


def table_lines() -> list[str]:
    """The table as text (for `deploykit parity --help` readers and the README)."""
    out = []
    for g in TABLE.values():
        out.append(f"{g.precision}: (at least {g.min_samples} held-out sample(s))")
        out += [f"  output  {t.line()}" for t in g.output]
        out += [f"  embed   {t.line()}" for t in g.embedding]
        out += [f"  pose    {t.line()}" for t in g.pose]
    return out


def help_lines() -> list[str]:
    """The table in a few lines, for `deploykit parity --help` (generated, so the help cannot drift)."""
    def cond(ts):
        return ", ".join(f"{t.figure} {t.op} {t.limit:g}" for t in ts)

    out = [f"{g.precision:<5} {cond(g.output)}" + (" + task" if g.embedding or g.pose else "") for g in TABLE.values()]
    task = next(g for g in TABLE.values() if g.embedding)
    out.append(f"task, embeddings: {cond(task.embedding)}")
    out.append("      (the differences with labels, widened to one query on small sets)")
    out.append(f"task, pose: {cond(task.pose)}")
    out.append(f"      on peaked joints (peak >= {PEAK_MIN_STD:g} std above the median); flat maps: not applicable")
    return out

