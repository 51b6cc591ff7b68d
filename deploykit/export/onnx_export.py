"""`OnnxFromModel`: a registered model -> static-shape ONNX file + manifest, written atomically."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import platform
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from .. import __version__, artifact_set, manifest as mf
from ..artifact import Artifact
from ..preflight import check_tensor_memory
from ..errors import BadInputError, DeploykitError, require
from ..manifest import TensorSpec

DEFAULT_OPSET = 17  # TensorRT 8.5 (JetPack 5) reads opsets up to 17
DEFAULT_OUT = "artifacts"  # `deploykit export`'s --out
EXPORTER = "torch.onnx.export(dynamo=False)"


@dataclasses.dataclass
class ExportResult(Artifact):
    """What an export wrote: an Artifact whose `path` is the ONNX model."""

    @property
    def onnx_path(self) -> Path:
        return self.path


class ExportError(DeploykitError):
    """torch could not export a model, or the exported graph failed the ONNX checker."""


@dataclasses.dataclass
class OnnxFromModel:
    """Lazy stage: calling it exports model `name` to `out_dir/name.onnx` plus its manifest (an ExportResult).

    `out_dir` defaults to `artifacts`; as the input of another stage it is that stage's folder.

    Attributes:
        name: registry name.
        checkpoint: upstream checkpoint path, or a mapping of state-dict prefix -> path for upstream
            checkpoints split over several files (PGFA); None means seeded random weights (for parity work).
        batch: static batch size; default 1.
        dynamic_batch: make axis 0 dynamic up to this size (`export/dynamic_batch.py`); the specs then
            hold this batch and the manifest a `dynamic_batch` profile; None (default) = static.
        opt_batch: the profile's optimum batch; default `dynamic_batch`.
        input_size: image input (h, w) other than the registry's (`ModelSpec.at_input_size`: HRNet,
            RGA); default None = the registry's, or the size a proxy checkpoint records it was
            trained at (`checkpoints.read_proxy_meta`).
        frames: static frame count for gait models; default the spec's (30).
        opset: ONNX opset; default 17.
        seed: seed of the random weights; default 0.
        allow_mismatch: load a checkpoint even if some keys do not fit (reported in the manifest).
        overrides: config overrides passed to `models.build`.
        patches: graph patches to apply after export (`deploykit.export.patches`); None (the
            default) applies the default set, an empty list none. The manifest lists those that
            changed the graph, and its onnx_sha256 is of the patched file.
    """

    name: str
    checkpoint: Optional[Union[str, Mapping[str, str]]] = None
    batch: int = 1
    frames: Optional[int] = None
    opset: int = DEFAULT_OPSET
    seed: int = 0
    allow_mismatch: bool = False
    overrides: dict = dataclasses.field(default_factory=dict)
    patches: Optional[Sequence[str]] = None
    dynamic_batch: Optional[int] = None
    opt_batch: Optional[int] = None
    input_size: Optional[tuple[int, int]] = None

    def spec(self):
        """The registry's spec at this export's input size (`input_size`, else the proxy checkpoint's)."""
        from .. import models

        spec = models.spec(self.name)
        hw = self._input_size()
        return spec if hw is None else spec.at_input_size(*hw)

    def _input_size(self) -> Optional[tuple[int, int]]:
        trained = None
        if isinstance(self.checkpoint, (str, os.PathLike)) and os.path.isfile(self.checkpoint):
            if "_trained_size" not in self.__dict__:  # one read of the file, however often the specs are asked
                from ..models.checkpoints import read_proxy_meta

                size = (read_proxy_meta(self.checkpoint) or {}).get("input_size")
                self.__dict__["_trained_size"] = tuple(int(v) for v in size) if size else None
            trained = self.__dict__["_trained_size"]
        given = None if self.input_size is None else tuple(int(v) for v in self.input_size)
        if given and trained and given != trained:
            raise BadInputError(f"{self.name}: --input-size {given[0]}x{given[1]} but {self.checkpoint} was trained "
                                f"at {trained[0]}x{trained[1]}; drop --input-size (the checkpoint's size is used)")
        return given or trained

    def _profile(self) -> Optional[dict]:
        if self.dynamic_batch is None:
            return None
        from . import dynamic_batch

        prof = dynamic_batch.profile(self.dynamic_batch, self.opt_batch, self.name)
        if int(self.batch) not in (1, prof["max"]):
            raise BadInputError(f"{self.name}: --batch {self.batch} and --dynamic-batch {prof['max']} disagree; "
                                f"give only --dynamic-batch (its maximum is the specs' batch)")
        return prof

    def input_specs(self) -> list[TensorSpec]:
        prof = self._profile()
        return self.spec().input_specs(prof["max"] if prof else self.batch, self.frames)

    def validate(self) -> list[TensorSpec]:
        """Check name, shapes, opset and the checkpoint file before any work; return the input specs."""
        if not 7 <= int(self.opset) <= 21:
            raise BadInputError(f"{self.name}: --opset {self.opset} is outside 7..21; use 17 (TensorRT 8.5+) "
                              f"unless your TensorRT needs another")
        specs = self.input_specs()
        check_tensor_memory(specs, f"{self.name} --batch {self.batch} --frames {self.frames}")
        if self.patches is not None:
            from .patches import resolve

            resolve(self.patches)  # unknown patch names fail here, before any work
        if self.checkpoint is not None:
            from ..models.checkpoints import read_multi, read_state_dict

            if isinstance(self.checkpoint, Mapping):  # several upstream files under prefixes (PGFA)
                read_multi(self.checkpoint)
            else:
                read_state_dict(self.checkpoint)  # fails early, with the file named, if unreadable
        return specs

    def __call__(self, out_dir: Optional[str | os.PathLike] = None) -> ExportResult:
        out_dir = DEFAULT_OUT if out_dir is None else out_dir
        torch = require("torch", "export")
        onnx = require("onnx", "export")
        from .. import models
        from ..models.factory import reference_model

        spec = self.spec()
        specs = self.validate()
        overrides = {**self.overrides, **{k: spec.default_config[k] for k in spec.input_size_keys or ()}}
        # The stage is opened before any heavy work: an unwritable --out fails in a second, not after the export.
        with artifact_set.staged(out_dir, self.name) as (stage, final):
            model, weights = reference_model(self.name, seed=self.seed, checkpoint=self.checkpoint,
                                             allow_mismatch=self.allow_mismatch, **overrides)
            feeds = spec.sample_inputs(specs, seed=self.seed)
            args = tuple(torch.from_numpy(feeds[s.name]) for s in specs)
            with torch.no_grad():
                ref = model(*args)
            ref = ref if isinstance(ref, (tuple, list)) else (ref,)
            outputs = [TensorSpec(t.name, tuple(r.shape), "float32", t.meaning) for t, r in zip(spec.outputs, ref)]
            onnx_path, man_path = stage / f"{self.name}.onnx", stage / f"{self.name}.manifest.json"
            self._export(torch, model, args, specs, outputs, onnx_path)
            artifact_set.fault_point("export:onnx-written")
            self._check(onnx, onnx_path)
            applied = self._patch(onnx, onnx_path)
            if self.dynamic_batch is not None:  # run it at batch 1 and MAX before anything is committed
                from . import dynamic_batch

                dynamic_batch.verify(onnx_path, self.name, feeds)
            man = self._manifest(spec, specs, outputs, weights, onnx_path, torch, onnx, applied, overrides)
            mf.write(man_path, man)
            artifact_set.fault_point("export:manifest-written")
        onnx_path, man_path = final(onnx_path), final(man_path)
        return ExportResult(onnx_path, man_path, mf.read(man_path))

    def _export(self, torch, model, args, specs, outputs, path: Path) -> None:
        axes = None
        if self.dynamic_batch is not None:
            from .dynamic_batch import dynamic_axes

            axes = dynamic_axes(specs, outputs)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")  # TracerWarnings about Python ints are expected: shapes are static
            try:
                torch.onnx.export(model, args, str(path), dynamo=False, opset_version=int(self.opset),
                                  input_names=[s.name for s in specs], output_names=[o.name for o in outputs],
                                  do_constant_folding=True, dynamic_axes=axes)
            except Exception as exc:
                if axes is not None:  # the static export of this model works; the dynamic axis is the cause
                    from .dynamic_batch import DynamicBatchError

                    raise DynamicBatchError(f"{self.name}: its graph cannot take a dynamic batch (torch.onnx.export "
                                            f"fails with a dynamic axis 0: {str(exc).splitlines()[0][:160]}); "
                                            f"export it static and use runtime.batching.infer_many") from exc
                raise ExportError(f"{self.name}: torch.onnx.export failed: {str(exc).splitlines()[0]}; try "
                                  f"another --opset, or report this model/shape combination") from exc

    def _check(self, onnx, path: Path) -> None:
        try:
            onnx.checker.check_model(str(path), full_check=True)
        except Exception as exc:
            raise ExportError(f"{self.name}: the exported graph fails onnx.checker (full_check): "
                              f"{str(exc).splitlines()[0]}") from exc
        got = {o.domain: o.version for o in onnx.load(str(path), load_external_data=False).opset_import}
        if got.get("", got.get("ai.onnx")) != int(self.opset):
            raise ExportError(f"{self.name}: asked for opset {self.opset} but the exporter wrote {got}")

    def _patch(self, onnx, path: Path) -> list[dict]:
        """Apply the selected graph patches to the file at `path` in place; return the manifest entries."""
        from .patches import apply_patches

        model, applied = apply_patches(onnx.load(str(path)), self.patches)
        onnx.save(model, str(path))
        return [a.to_json() for a in applied]

    def _manifest(self, spec, specs, outputs, weights, path: Path, torch, onnx, applied: list,
                  overrides: dict) -> dict[str, Any]:
        model_entry = spec.manifest_entry()
        from ..models.registry import resolve_config

        model_entry["config"] = resolve_config(self.name, **overrides)
        return {
            "model": model_entry,
            "weights": weights,
            "inputs": [s.to_json() for s in specs],
            "outputs": [o.to_json() for o in outputs],
            "batch": specs[0].shape[0],
            "dynamic_batch": self._profile(),
            "frames": specs[0].shape[1] if spec.has_frames else None,
            "opset": int(self.opset),
            "exporter": EXPORTER,
            "patches": applied,
            "onnx_sha256": mf.sha256_file(path),
            "preprocess": dict(spec.preprocess),
            "postprocess": dict(spec.postprocess),
            "versions": {"deploykit": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
                         "python": platform.python_version()},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
