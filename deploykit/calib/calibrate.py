"""`QdqFromOnnx`: one calibration of an FP32 ONNX model, and everything made from it.

    >>> res = QdqFromOnnx("artifacts/gaitgl.onnx", data="sils/", method="entropy", samples=128)("engines")
    >>> res.paths   # opt, ranges, cache, s8s8, u8s8

Outputs in `out_dir` (NAME = the model file's stem):

| file | what |
|---|---|
| NAME.opt.onnx | the FP32 model after ONNX Runtime's basic optimisation (BatchNorm folded); the tensor names below are its |
| NAME.ranges.json | the readable ranges: method, samples, source, per tensor amax / lo / hi / observed min & max |
| NAME.calib.cache | TensorRT calibration cache (`TRT-<version>-EntropyCalibration2`), for implicit INT8 on 8.5-10.x |
| NAME.int8-s8s8.onnx | S8S8 Q/DQ model for TensorRT (explicit quantization) + manifest |
| NAME.int8.onnx | U8S8 Q/DQ model, the ONNX Runtime INT8 engine + manifest |

With `sensitivity=True` the per-layer sweep decides which layers stay float (sensitivity.py);
by default it runs only when the all-INT8 model measurably misses (`auto_mixed`). The choice
and the measurements go into both manifests, and both layouts keep the same layers float.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .. import __version__, artifact_set, manifest as mf
from ..constants import DEFAULT_CALIB_METHOD
from ..artifact import Artifact, Source, resolve
from . import mixed, qdq, ranges as R, sensitivity as S, sources, trt_cache

SENSITIVITY_SAMPLES = 8  # calibration samples reused to measure layer errors


@dataclasses.dataclass
class CalibrationResult(Artifact):
    """What one calibration wrote and decided: an Artifact whose `path` is the U8S8 model (ONNX Runtime's
    INT8 engine); `paths` holds every file (opt, ranges, cache, s8s8, u8s8)."""

    paths: dict[str, Path] = dataclasses.field(default_factory=dict)
    ranges: Optional[R.Ranges] = None
    float_nodes: list[str] = dataclasses.field(default_factory=list)
    sensitivity: Optional[S.SensitivityReport] = None
    engine_entry: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class QdqFromOnnx:
    """Lazy stage: calibrate `onnx_path` (manifest beside it) and write the INT8 artifacts.

    Attributes:
        onnx_path: FP32 ONNX exported by deploykit (its manifest gives inputs, family, preprocessing): a
            path, an Artifact, or a stage (called first, into `out_dir`).
        data: --calib-data: a folder, .npy/.npz, video, or None/"synthetic" (seeded, warns).
        method: "percentile" (default, constants.DEFAULT_CALIB_METHOD), "entropy" (TensorRT's) or "max".
        samples: at most this many calibration samples; default 64.
        percentile: for the percentile method; default 99.99.
        sensitivity: run the per-layer sweep and keep hurting layers in float; default False.
        auto_mixed: measure the all-INT8 model on the kept samples and run the sweep when its NSR
            exceeds sensitivity.AUTO_TRIGGER_NSR; default True.
        keep_float: node names always kept in float.
        target_nsr: the sensitivity choice's target (output noise-to-signal ratio vs FP32); default 0.01.
        trt_version: TensorRT version written in the cache header; default 8.5.2 (JetPack 5).
        seed: synthetic source seed; default 0.
        threads: ONNX Runtime threads; default None.
        progress: progress bars on stderr; default True.
    """

    onnx_path: Source
    data: Optional[str | os.PathLike] = None
    method: str = DEFAULT_CALIB_METHOD
    samples: int = sources.DEFAULT_SAMPLES
    percentile: float = R.DEFAULT_PERCENTILE
    sensitivity: bool = False
    auto_mixed: bool = True
    keep_float: Sequence[str] = ()
    target_nsr: float = 0.01
    trt_version: str = trt_cache.DEFAULT_TARGET
    seed: int = 0
    threads: Optional[int] = None
    progress: bool = True

    def __call__(self, out_dir: Optional[str | os.PathLike] = None) -> CalibrationResult:
        """Calibrate into `out_dir` (default: the input's folder)."""
        method = R.CalibMethod.parse(self.method)
        source = resolve(self.onnx_path, out_dir, "QdqFromOnnx")
        src_path = source.path
        out_dir = src_path.parent if out_dir is None else out_dir
        man = mf.read(mf.manifest_path_for(src_path))
        stem = src_path.name.rsplit(".", 1)[0]
        source = sources.open_source(self.data, man, seed=self.seed)  # bad data fails before any write
        # opt, ranges, cache, both Q/DQ models and manifests are one set (artifact_set.py): staged, then
        # committed together, manifests last; when out_dir is already a stage (build-engine) it writes into it.
        with artifact_set.staged(out_dir, stem) as (out, final):
            res = self._calibrate(src_path, man, source, method, stem, out)
        res.paths = {k: final(v) for k, v in res.paths.items()}
        res.path, res.manifest_path = res.paths["u8s8"], mf.manifest_path_for(res.paths["u8s8"])
        res.manifest, res.source = mf.read(res.manifest_path), source
        return res

    def _calibrate(self, src_path: Path, man: dict, source, method, stem: str, out: Path) -> CalibrationResult:
        import onnx
        import onnxruntime

        paths = {"opt": out / f"{stem}.opt.onnx", "ranges": out / f"{stem}.ranges.json",
                 "cache": out / f"{stem}.calib.cache", "s8s8": out / f"{stem}.int8-s8s8.onnx",
                 "u8s8": out / f"{stem}.int8.onnx"}
        qdq.optimize_for_quantization(src_path, paths["opt"])
        artifact_set.fault_point("calibrate:opt-written")
        collector = R.RangeCollector(paths["opt"], threads=self.threads)
        kept: list[dict[str, np.ndarray]] = []

        def keep(it):
            for feeds in it:
                if sum(f[next(iter(f))].shape[0] for f in kept) < SENSITIVITY_SAMPLES:
                    kept.append(feeds)
                yield feeds

        collector.collect(keep(sources.batches(source, self.samples, progress=self.progress)))
        rng = collector.ranges(method, self.percentile, source.describe(), mf.sha256_file(paths["opt"]))
        rng.save(paths["ranges"])
        trt_cache.write(paths["cache"], rng, self.trt_version)
        artifact_set.fault_point("calibrate:ranges-written")

        float_nodes = list(self.keep_float)
        report, how, ref = None, "given" if float_nodes else "none: every quantizable op is INT8", None
        if (self.sensitivity or self.auto_mixed) and kept:
            ref = S.reference_outputs(paths["opt"], kept, self.threads)  # once, for S8S8 and U8S8
        if self.sensitivity or self.auto_mixed:
            report, _, how = self._sensitivity(paths["opt"], rng, kept, float_nodes, ref)
            float_nodes = sorted(set(float_nodes) | set(report.float_nodes if report else ()))
        qdq.quantize(paths["opt"], rng, qdq.QdqLayout.S8S8, paths["s8s8"], exclude_nodes=float_nodes)
        u8s8_float, u8s8_how, written = self._u8s8_float_nodes(paths, rng, kept, list(self.keep_float), float_nodes, ref)
        if not written:
            qdq.quantize(paths["opt"], rng, qdq.QdqLayout.U8S8, paths["u8s8"], exclude_nodes=u8s8_float)

        entry = {"precision": "int8",
                 "calibration": {"method": method.value, "percentile": rng.percentile, "samples": rng.samples,
                                 "source": rng.source, "synthetic": isinstance(source, sources.SyntheticSource),
                                 "ranges": paths["ranges"].name, "trt_cache": paths["cache"].name,
                                 "trt_cache_version": trt_cache.version_tag(self.trt_version)},
                 "mixed_precision": {"float_nodes": float_nodes, "decided_by": how,
                                     "sensitivity": report.to_json() if report else None},
                 "source_onnx": src_path.name, "source_onnx_sha256": mf.sha256_file(src_path),
                 "versions": {"deploykit": __version__, "onnxruntime": onnxruntime.__version__,
                              "onnx": onnx.__version__}}
        for key, layout in (("s8s8", qdq.QdqLayout.S8S8), ("u8s8", qdq.QdqLayout.U8S8)):
            mixed_entry = entry["mixed_precision"] if key == "s8s8" else \
                {**entry["mixed_precision"], "float_nodes": u8s8_float, "u8s8": u8s8_how}
            mf.write_engine_manifest(man, paths[key], {
                "backend": "onnxruntime", **entry, "mixed_precision": mixed_entry,
                "layout": layout.description, "qdq": qdq.count_qdq(paths[key]),
                "intended_for": "TensorRT (explicit quantization; ONNX Runtime runs it too, slowly)"
                if layout is qdq.QdqLayout.S8S8 else "ONNX Runtime CPU (x86 VNNI)"})
        return CalibrationResult(paths["u8s8"], paths=paths, ranges=rng, float_nodes=u8s8_float, sensitivity=report,
                                 engine_entry=entry)

    def _u8s8_float_nodes(self, paths: dict, rng: R.Ranges, feeds: list, given: list[str],
                          chosen: list[str], ref: Optional[list]) -> tuple[list[str], str, bool]:
        """The float set for the U8S8 model: the sweep's set is chosen on S8S8 (TensorRT's placement), but
        U8S8 is ONNX Runtime's own op set (it also quantizes op outputs), where the same set can make the
        output worse (hrnet-w32: plain cosine fell below 0.98). So it is kept for U8S8 only when it
        measurably lowers U8S8's output NSR on the sweep samples. The user's --keep-float, and an explicit
        --sensitivity set, are always kept.

        Returns (float nodes, why, whether paths["u8s8"] is already written): the two measured models are
        written into the stage, the better one becomes the U8S8 artifact, so nothing is quantized twice."""
        extra = sorted(set(chosen) - set(given))
        if self.sensitivity or not extra or not feeds:  # --sensitivity asked for the set on both: kept
            return chosen, "same float set as S8S8", False
        evaluate = S.evaluator(paths["opt"], rng, feeds, given, self.threads, layout=qdq.QdqLayout.U8S8, ref=ref)
        without_path = paths["u8s8"].with_name(paths["u8s8"].stem + ".all-int8.onnx")
        with_set, without = evaluate(extra, keep=paths["u8s8"]), evaluate([], keep=without_path)
        if with_set <= without:
            without_path.unlink()
            return chosen, f"S8S8's float set kept: U8S8 output NSR {with_set:.3g} with it, {without:.3g} without", True
        os.replace(without_path, paths["u8s8"])
        return sorted(given), (f"S8S8's automatic float set dropped: U8S8 output NSR {with_set:.3g} with it, "
                               f"{without:.3g} without (U8S8 quantizes other ops' outputs)"), True

    def _sensitivity(self, opt: Path, rng: R.Ranges, feeds: list, forced: Sequence[str], ref: Optional[list]):
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), disable=not self.progress) as bar:
            task = bar.add_task("sensitivity (one layer at a time)", total=None)
            return mixed.decide(opt, rng, feeds, forced=forced, target=self.target_nsr, always=self.sensitivity,
                                threads=self.threads, ref=ref,
                                progress=lambda k, n: bar.update(task, completed=k, total=n))
