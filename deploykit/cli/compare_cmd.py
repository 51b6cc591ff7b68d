"""`deploykit compare`: engine against engine, or against saved outputs, on the same inputs (no torch)."""

from __future__ import annotations

import sys

import click

from ._app import main
from ._common import handle_errors
from ._report import emit, json_option, summary


@main.command()
@click.argument("a", metavar="A_ENGINE", type=click.Path(dir_okay=False))
@click.argument("b", metavar="B_ENGINE|B_OUTPUTS.npz", required=False, type=click.Path(dir_okay=False))
@click.option("--load-inputs", "inputs", type=click.Path(dir_okay=False), default=None,
              help="Inputs .npz: one array per input name, [n, *shape] (default: --samples seeded samples).")
@click.option("--samples", type=int, default=4, show_default=True, help="Seeded samples when no --load-inputs.")
@click.option("--save-outputs", type=click.Path(dir_okay=False), default=None,
              help="Write A's outputs here (.npz, [n, *shape] per output name), e.g. to compare on another machine.")
@click.option("--save-inputs", type=click.Path(dir_okay=False), default=None, help="Write the inputs used here (.npz).")
@click.option("--atol", multiple=True, metavar="[OUTPUT:]X", help="Absolute tolerance (default 1e-5; per output OUT:X).")
@click.option("--rtol", multiple=True, metavar="[OUTPUT:]X", help="Relative tolerance (default 1e-5; per output OUT:X).")
@click.option("--threads", type=int, default=None, help="Intra-op threads.")
@json_option
@handle_errors
def compare(a, b, inputs, samples, save_outputs, save_inputs, atol, rtol, threads, json_path) -> None:
    """Run A (and B) on the same inputs and compare every output; exit 1 when a tolerance fails.

    \b
    B is another engine file or the outputs .npz of an earlier `--save-outputs` run (B is the
    reference). An element passes when |a - b| <= atol + rtol * |b| (Polygraphy's rule); cosine and,
    over two or more samples, the centred cosine (the input-dependent part) are reported too.
    Without B, A's outputs are only saved (--save-outputs).
      deploykit compare gaitgl.int8.onnx gaitgl.onnx --atol 1e-2
      deploykit compare gaitgl.onnx --load-inputs clips.npz --save-outputs ref.npz   # on the workstation
      deploykit compare gaitgl.plan ref.npz --load-inputs clips.npz --atol 5e-3       # on the Jetson
    Exit codes: 0 every output within tolerance, 1 one is not, 2 bad input.
    """
    import dataclasses

    from ..errors import BadInputError
    from ..runtime import Engine
    from ..verify.engine_compare import (compare_outputs, load_inputs, parse_tolerances, run_samples,
                                         sample_inputs, save_arrays, _read_npz)

    if b is None and not save_outputs:
        raise BadInputError("deploykit compare needs B (an engine or an outputs .npz) or --save-outputs")
    with Engine.load(a, threads=threads) as ea:
        feeds = load_inputs(inputs, ea.inputs) if inputs else sample_inputs(ea.inputs, samples)
        out_a = run_samples(ea, feeds)
    if save_inputs:
        save_arrays(save_inputs, feeds)
    if save_outputs:
        summary(f"wrote {save_arrays(save_outputs, out_a)}", json_path)
    if b is None:
        return
    if b.endswith(".npz"):
        out_b = _read_npz(b, "outputs")
        label = f"saved outputs {b}"
    else:
        with Engine.load(b, threads=threads) as eb:
            out_b = run_samples(eb, feeds)
        label = b
    at, rt = parse_tolerances(atol, 1e-5, "--atol"), parse_tolerances(rtol, 1e-5, "--rtol")
    results = compare_outputs(out_a, out_b, at, rt)
    n = next(iter(feeds.values())).shape[0]
    ok = all(r.passed for r in results)
    summary("\n".join([f"{a} vs {label} on {n} sample(s):",
                        *(r.line(at.get(r.name, at[""]), rt.get(r.name, rt[""])) for r in results),
                        "PASS" if ok else "FAIL"]), json_path)
    emit({"a": a, "b": label, "samples": n, "passed": ok,
          "outputs": [{**dataclasses.asdict(r), "atol": at.get(r.name, at[""]), "rtol": rt.get(r.name, rt[""])}
                      for r in results]}, json_path)
    sys.exit(0 if ok else 1)
