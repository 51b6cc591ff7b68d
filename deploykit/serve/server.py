"""Start Triton Inference Server on a repository (`deploykit serve`), wait for readiness, stop cleanly.

The server is the system's `tritonserver` when on PATH, else the one in the pytriton wheel of the
`[serve]` extra (`pytriton/tritonserver/bin/tritonserver`). That wheel's Python-backend stub links the
system's shared libpython (Debian's 3.11.2 here); the stub then runs model.py with the packages of
*this* interpreter (PYTHONPATH below), so this interpreter must be the same build: checked up front.
"""

from __future__ import annotations

import os
import shutil
import signal
import site
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import BadInputError, DeploykitError, MissingExtraError


class ServerError(DeploykitError):
    """tritonserver exited or did not get ready in time."""


@dataclass
class Layout:
    """Where the server binary, the Python backend library and the matching stub are."""

    server: Path
    backend_lib: Optional[Path]  # pytriton: backends/python/libtriton_python.so
    stub: Optional[Path]  # pytriton: python_backend_stubs/3.X/triton_python_backend_stub


def find_layout() -> Layout:
    """The system tritonserver if on PATH, else the pytriton wheel's (MissingExtraError without either)."""
    system = shutil.which("tritonserver")
    if system:
        return Layout(Path(system), None, None)
    try:
        import pytriton  # noqa: F401
    except ImportError:
        raise MissingExtraError("no tritonserver on PATH and no pytriton wheel: run `bash scripts/serve_env.sh` "
                                "and use .venv-serve/bin/deploykit (or pip install 'deploykit[serve]')") from None
    root = Path(pytriton.__file__).parent / "tritonserver"
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / ver / "triton_python_backend_stub"
    if not stub.is_file():
        raise MissingExtraError(f"the pytriton wheel has no Python-backend stub for Python {ver}; use Python 3.8-3.13")
    return Layout(root / "bin" / "tritonserver", root / "backends" / "python" / "libtriton_python.so", stub)


def linked_libpython(stub: Path) -> Optional[Path]:
    """The libpython the stub's loader resolves (from `ldd`), or None if it links none."""
    out = subprocess.run(["ldd", str(stub)], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        if "libpython" in line and "=>" in line:
            target = line.split("=>")[1].split("(")[0].strip()
            return Path(target).resolve() if target and target != "not" else None
    return None


def check_interpreter(stub: Path) -> None:
    """Refuse (one line) when this interpreter is not the build whose libpython the stub links.

    A different 3.X build loads its own stdlib into the stub and fails inside Triton with errors
    such as `'_thread.RLock' object has no attribute '_recursion_count'`.
    """
    lib = linked_libpython(stub)
    mine = Path(sysconfig.get_config_var("LIBDIR") or "") / (sysconfig.get_config_var("INSTSONAME") or "")
    if lib is None or not mine.exists() or mine.resolve() != lib:
        raise BadInputError(f"this Python ({sys.executable}, {sys.version.split()[0]}) is not the one Triton's "
                            f"Python-backend stub links ({lib or 'no libpython found'}); run deploykit serve from a "
                            f"venv made with that interpreter: bash scripts/serve_env.sh, then .venv-serve/bin/deploykit")


def backend_dir(layout: Layout, into: Path) -> Path:
    """A backends folder whose python/ holds the wheel's backend library, utils and the matching stub."""
    py = into / "python"
    py.mkdir(parents=True)
    for f in (layout.backend_lib, layout.backend_lib.with_name("triton_python_backend_utils.py"), layout.stub):
        os.symlink(f, py / f.name)
    return into


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child_env() -> dict[str, str]:
    """PYTHONPATH for the stub: this interpreter's site-packages and the folder holding deploykit
    (an editable install's .pth finder is not read from PYTHONPATH folders)."""
    import deploykit

    paths = [str(Path(deploykit.__file__).resolve().parent.parent), *site.getsitepackages()]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    # the embedded interpreter finds its prefix (the venv) from the first python on PATH, as PyTriton does
    env["PATH"] = os.pathsep.join([str(Path(sys.prefix) / "bin"), env.get("PATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _python_or_ensemble(config: str) -> bool:
    # the ensemble scheduler is in Triton's core, so the wheel's server runs ensembles of Python models
    return 'backend: "python"' in config or 'platform: "ensemble"' in config


class Server:
    """A running tritonserver; `with Server(repo) as s:` starts it and waits until ready, exit stops it."""

    def __init__(self, repo: str | os.PathLike, http_port: Optional[int] = None, grpc_port: Optional[int] = None,
                 ready_timeout: float = 120.0, log=None, extra_args: tuple[str, ...] = ()) -> None:
        self.repo = Path(repo)
        if not (self.repo / "").is_dir() or not any(self.repo.glob("*/config.pbtxt")):
            raise BadInputError(f"{repo} is not a model repository (no */config.pbtxt); write one with "
                                f"`deploykit triton-repo ENGINE --out {repo}`")
        self.http_port = http_port or free_port()
        self.grpc_port = grpc_port or free_port()
        self.ready_timeout = ready_timeout
        self.log = log
        self.extra_args = extra_args
        self.proc: Optional[subprocess.Popen] = None
        self._tmp: Optional[tempfile.TemporaryDirectory] = None

    def models(self, python_only: bool) -> list[str]:
        """Model names of the repository (with `python_only`, the Python-backend ones and the ensembles)."""
        return sorted(c.parent.name for c in self.repo.glob("*/config.pbtxt")
                      if not python_only or _python_or_ensemble(c.read_text()))

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self) -> "Server":
        layout = find_layout()
        args = [str(layout.server), f"--model-repository={self.repo.resolve()}", f"--http-port={self.http_port}",
                f"--grpc-port={self.grpc_port}", "--http-address=127.0.0.1", "--grpc-address=127.0.0.1",
                "--allow-metrics=false", "--model-control-mode=explicit", *self.extra_args]
        # the wheel's server has only the Python backend: load just those models (a system server loads all)
        args += [f"--load-model={m}" for m in self.models(python_only=layout.stub is not None)]
        if layout.stub is not None:
            check_interpreter(layout.stub)
            self._tmp = tempfile.TemporaryDirectory(prefix="deploykit-triton-")
            args.append(f"--backend-directory={backend_dir(layout, Path(self._tmp.name) / 'backends')}")
        self.proc = subprocess.Popen(args, env=_child_env(), stdout=self.log or subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:  # Ctrl-C while loading too: in its own session, the server would outlive us
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise ServerError(f"tritonserver exited with code {self.proc.returncode} while loading {self.repo} "
                                  f"(its log says why; run deploykit serve to see it)")
            try:
                with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise ServerError(f"tritonserver did not get ready within {self.ready_timeout:.0f} s on {self.repo}")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (Triton unloads models and exits), SIGKILL the process group if it does not."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
