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


@main.command()
@click.argument("repo", type=click.Path())
@click.option("--http-port", type=int, default=8000, show_default=True)
@click.option("--grpc-port", type=int, default=8001, show_default=True)
@handle_errors
def serve(repo, http_port, grpc_port) -> None:
    """Serve REPO with tritonserver until Ctrl-C / SIGTERM (models that need GPU backends are skipped here)."""
    from ..serve.server import Server

    # Without a system tritonserver only Python-backend models load (the wheel has no ORT/TRT backend).
    srv = Server(repo, http_port, grpc_port).start()
    click.echo(f"ready: HTTP http://{srv.http_url}  gRPC {srv.grpc_url}  (Ctrl-C stops)")
    signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        srv.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
