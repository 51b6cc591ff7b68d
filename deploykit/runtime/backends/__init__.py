"""One module per engine backend: its `Engine` subclass and its `Backend` record (`runtime/backend.py`).

Every non-private module here is imported by `deploykit.runtime.backend` (package scan), so a new
backend is one new module that calls `backend.register(Backend(...))`, plus its builder in
`deploykit/build/backends/`. A module imports its backend library lazily (in `_activate` and the
probe), so listing the backends needs none of them.
"""
