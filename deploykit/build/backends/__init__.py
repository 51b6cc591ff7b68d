"""One builder module per backend: `preflight(options)` and `build(onnx_path, manifest, options, out_dir,
calibration=None) -> BuildResult`.

A runtime record (`deploykit/runtime/backends/NAME.py`) names its builder here by import path, so
the runtime never imports building and `build_engine` imports no builder by name.
"""
