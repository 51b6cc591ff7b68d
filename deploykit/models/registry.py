"""The model registry: one frozen `ModelSpec` per method variant, registered by decorator.

Specs are data (timm's `PretrainedCfg` plus inputs, outputs and licence): the export, calibration,
runtime and verification stages read everything they need about a model from here.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np

from ..errors import BadInputError, UnknownModelError
from ..registry import Registry
from ..manifest import TensorSpec

FAMILIES = ("gait", "reid", "pose")
_REGISTRY: "Registry[ModelSpec]" = Registry("model", UnknownModelError, hint="run `deploykit list` to see them")


@dataclasses.dataclass(frozen=True)
class InputTemplate:
    """A model input whose shape may name the symbolic dims `batch` and `frames`.

    Attributes:
        name: graph input name.
        shape: ints and the strings "batch" / "frames".
        dtype: numpy dtype name.
        meaning: layout, units and value range, for humans and the manifest.
        low: lower bound of seeded random sample values (uniform).
        high: upper bound of seeded random sample values.
    """

    name: str
    shape: tuple[Any, ...]
    dtype: str = "float32"
    meaning: str = ""
    low: float = 0.0
    high: float = 1.0

    def resolve(self, batch: int, frames: Optional[int]) -> TensorSpec:
        dims = {"batch": batch, "frames": frames}
        shape = tuple(dims[d] if isinstance(d, str) else d for d in self.shape)
        return TensorSpec(self.name, shape, self.dtype, self.meaning)


@dataclasses.dataclass(frozen=True)
class OutputTemplate:
    """A model output: name and meaning (its shape is measured at export)."""

    name: str
    meaning: str = ""


SampleFn = Callable[[np.random.Generator, Sequence[TensorSpec]], dict]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything deploykit knows about one registered model variant.

    Attributes:
        name: registry name, e.g. "gaitgl".
        family: "gait", "reid" or "pose".
        inputs: input templates, in forward-argument order.
        outputs: output templates, in forward-return order.
        default_config: upstream config values passed to the builder as keyword arguments.
        upstream_keys: file name in shared/model_facts/upstream_keys/ with the upstream state dict, or,
            for a method whose upstream checkpoint is several files (PGFA), a mapping from our
            state-dict prefix to the key-list file of the module saved under it (in key order).
        upstream: "repo@commit path" of the upstream implementation.
        paper: title and arXiv/venue.
        licence: licence of the upstream code and weights.
        default_frames: frames for `--frames` (gait models) or None when there is no time axis.
        min_frames: the least frame count the model accepts.
        preprocess: facts the runtime applies before the engine (written into the manifest).
        postprocess: facts the runtime applies after the engine (metric, decoder, ...).
        sample_fn: optional seeded generator of realistic sample inputs (default: uniform low..high).
        adapt_checkpoint: maps an upstream state dict onto ours (renames); identity by default.
        input_size_keys: how the image input size may change (`at_input_size`): None (default) it
            is fixed; () the network is fully convolutional (HRNet); config key names (RGA's
            ("height", "width")) that take the new (h, w).
        builder: returns the nn.Module for a config (set by `register_model`).
    """

    name: str
    family: str
    inputs: tuple[InputTemplate, ...]
    outputs: tuple[OutputTemplate, ...]
    default_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    upstream_keys: Optional[Union[str, Mapping[str, str]]] = None
    upstream: str = ""
    paper: str = ""
    licence: str = ""
    default_frames: Optional[int] = None
    min_frames: int = 1
    preprocess: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    postprocess: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    sample_fn: Optional[SampleFn] = None
    adapt_checkpoint: Optional[Callable[[dict], dict]] = None
    input_size_keys: Optional[tuple[str, ...]] = None
    builder: Optional[Callable[..., Any]] = None

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"ModelSpec {self.name!r}: family {self.family!r} is not one of {FAMILIES}")
        object.__setattr__(self, "default_config", MappingProxyType(dict(self.default_config)))
        object.__setattr__(self, "preprocess", MappingProxyType(dict(self.preprocess)))
        object.__setattr__(self, "postprocess", MappingProxyType(dict(self.postprocess)))
        if self.upstream_keys is not None and not isinstance(self.upstream_keys, str):
            object.__setattr__(self, "upstream_keys", MappingProxyType(dict(self.upstream_keys)))

    def upstream_key_files(self) -> dict[str, str]:
        """Our state-dict prefix -> upstream key-list file ({"": file} for a single-file model; {} if none)."""
        if self.upstream_keys is None:
            return {}
        if isinstance(self.upstream_keys, str):
            return {"": self.upstream_keys}
        return dict(self.upstream_keys)

    @property
    def has_frames(self) -> bool:
        return any("frames" in t.shape for t in self.inputs)

    def input_specs(self, batch: int = 1, frames: Optional[int] = None) -> list[TensorSpec]:
        """Static input specs for a batch size and (gait models) a frame count.

        Args:
            batch: sequences or images per forward; default 1.
            frames: frames per sequence; default `default_frames`.

        Raises:
            BadInputError: batch < 1, or frames below `min_frames`.
        """
        if int(batch) < 1:
            raise BadInputError(f"{self.name}: batch {batch} is not allowed; use a batch of 1 or more")
        if self.has_frames:
            frames = self.default_frames if frames is None else int(frames)
            if frames < self.min_frames:
                raise BadInputError(f"{self.name}: --frames {frames} is too few; this model needs at "
                                    f"least {self.min_frames} frames (default {self.default_frames})")
        return [t.resolve(int(batch), frames) for t in self.inputs]

    def sample_inputs(self, specs: Sequence[TensorSpec], seed: int = 0) -> dict[str, np.ndarray]:
        """Seeded sample inputs for `specs`, realistic where the model needs it (e.g. GaitEdge masks)."""
        rng = np.random.default_rng(seed)
        if self.sample_fn is not None:
            return self.sample_fn(rng, specs)
        by_name = {t.name: t for t in self.inputs}
        return {s.name: rng.uniform(by_name[s.name].low, by_name[s.name].high, s.shape).astype(s.dtype)
                for s in specs}

    def at_input_size(self, h: int, w: int) -> "ModelSpec":
        """This spec with the image input `[batch, 3, h, w]`: the template, the preprocess size, the
        heatmap size (input / stride) and the config keys of `input_size_keys` follow.

        Raises:
            BadInputError: the model's input size is fixed, or (h, w) is not a multiple of 32 / positive.
        """
        if self.input_size_keys is None:
            raise BadInputError(f"{self.name}: the input size is fixed (upstream weights and the graph need "
                                f"{list(self.inputs[0].shape[2:])}); drop --input-size")
        if min(int(h), int(w)) < 32 or int(h) % 32 or int(w) % 32:
            raise BadInputError(f"{self.name}: --input-size {h}x{w}; give multiples of 32 (the network's "
                                f"total stride), e.g. 128x96")
        h, w = int(h), int(w)
        first = self.inputs[0]
        old = "x".join(str(v) for v in first.shape[2:])
        inputs = (dataclasses.replace(first, shape=(*first.shape[:2], h, w),
                                      meaning=first.meaning.replace(old.replace("x", ", "), f"{h}, {w}")),
                  *self.inputs[1:])
        pre = {**self.preprocess, "size_hw": [h, w]}
        post = dict(self.postprocess)
        if post.get("heatmap_hw"):
            stride = int(post.get("stride") or 4)
            post["heatmap_hw"] = [h // stride, w // stride]
        config = {**self.default_config, **dict(zip(self.input_size_keys, (h, w)))}
        return dataclasses.replace(self, inputs=inputs, preprocess=pre, postprocess=post, default_config=config)

    def manifest_entry(self) -> dict[str, Any]:
        """The model part of a manifest (pure JSON data)."""
        return {"name": self.name, "family": self.family, "config": dict(self.default_config),
                "upstream": self.upstream, "paper": self.paper, "licence": self.licence}


def register_model(spec: ModelSpec) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register `spec` with the decorated function as its builder.

    Raises:
        ValueError: the name is already registered (a duplicate is a bug, not a warning).
    """

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        _REGISTRY.register(spec.name, dataclasses.replace(spec, builder=fn))
        return fn

    return deco


def names(family: Optional[str] = None) -> list[str]:
    """Registered model names, sorted; optionally only one family."""
    return _REGISTRY.names(None if family is None else (lambda s: s.family == family))


def spec(name: str) -> ModelSpec:
    """The spec of a registered model.

    Raises:
        UnknownModelError: with the closest registered names.
    """
    return _REGISTRY.get(name)


def resolve_config(name: str, **overrides: Any) -> dict[str, Any]:
    """The default config of `name` with `overrides` applied (None values dropped).

    Raises:
        BadInputError: an override key the model does not have (the valid keys are listed).
    """
    s = spec(name)
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - set(s.default_config))
    if unknown:
        raise BadInputError(f"{name}: unknown config key(s) {unknown}; valid keys are "
                            f"{sorted(s.default_config)}")
    return {**s.default_config, **given}


def build(name: str, **overrides: Any):
    """Build the PyTorch module of `name` in eval mode with the upstream config plus overrides."""
    config = resolve_config(name, **overrides)
    return spec(name).builder(**config).eval()
