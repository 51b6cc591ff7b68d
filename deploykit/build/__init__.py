"""Engine building (above `calib` and `runtime`): `EngineFromOnnx`, the per-backend builders, FP16 graphs.

Moved out of `export/` (which is torch -> ONNX only): building imports `calib` and `runtime`, so it
sits above both.
"""
