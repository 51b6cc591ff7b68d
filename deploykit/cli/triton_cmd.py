"""`deploykit triton-repo` and `deploykit serve`: a Triton model repository from engines, and a server on it."""

from __future__ import annotations

import signal

import click

from ._app import main
from ._common import handle_errors


@main.command("triton-repo")
@click.argument("engines", nargs=-1, type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="The model repository folder to write.")
@click.option("--instances", default=1, show_default=True, help="instance_group count per model.")
@click.option("--cpu", is_flag=True, help="Production models on KIND_CPU instead of KIND_GPU.")
@click.option("--queue-delay-us", default=2000, show_default=True, help="dynamic_batching max queue delay.")
@click.option("--ensemble-via", type=click.Choice(["python", "production"]), default="python", show_default=True,
              help="The ensembles' engine step: the Python-backend model (CPU hosts, the pytriton wheel) or the "
                   "onnxruntime/tensorrt_plan model (a GPU host's tritonserver).")
@click.option("--force", is_flag=True, help="Replace an existing --out.")
@handle_errors
def triton_repo(engines, out, instances, cpu, queue_delay_us, ensemble_via, force) -> None:
    """Write a Triton repository: per ENGINE its onnxruntime/tensorrt_plan model, a Python-backend model,
    and (pose / re-ID / gait, dynamic batch) pre/post models with an ensemble chaining them."""
    from ..serve.repo import write_repository

    notes: list[str] = []
    names = write_repository(engines, out, instances=instances, gpu=not cpu, queue_delay_us=queue_delay_us,
                             force=force, notes=notes, ensemble_via=ensemble_via)
    for line in notes:
        click.echo(f"note: {line}", err=True)
    click.echo(f"wrote {out}: models {', '.join(names)}")


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


@main.command()
@click.argument("repo", type=click.Path())
@click.option("--http-port", type=int, default=8000, show_default=True)
@click.option("--grpc-port", type=int, default=8001, show_default=True)
@handle_errors
def serve(repo, http_port, grpc_port) -> None:
    """Serve REPO with tritonserver until Ctrl-C / SIGTERM (models that need GPU backends are skipped here).

    Ctrl-C or SIGTERM once ready: tritonserver is stopped (SIGTERM, then SIGKILL after 30 s) and the exit
    code is 0; while loading: stopped too, exit code 130; tritonserver dying by itself: exit code 1.
    """
    from ..serve.server import Server, ServerError

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    # SIGTERM as Ctrl-C from the start: tritonserver runs in its own session, so only we can stop it
    signal.signal(signal.SIGTERM, _interrupt)
    # Without a system tritonserver only Python-backend models load (the wheel has no ORT/TRT backend).
    srv, ready = Server(repo, http_port, grpc_port), False
    try:
        srv.start()
        ready = True
        click.echo(f"ready: HTTP http://{srv.http_url}  gRPC {srv.grpc_url}  (Ctrl-C stops)")
        code = srv.proc.wait()
    except KeyboardInterrupt:
        if not ready:
            raise  # interrupted while loading: exit code 130 (handle_errors)
        code = None
    finally:
        # a second Ctrl-C must not cut the shutdown short and leave the server running
        for sig in old:
            signal.signal(sig, signal.SIG_IGN)
        try:
            srv.stop()
        finally:
            for sig, handler in old.items():  # as they were (CliRunner runs this in the caller's process)
                signal.signal(sig, handler)
    if code is not None:
        raise ServerError(f"tritonserver exited by itself with code {code} while serving {repo}")
