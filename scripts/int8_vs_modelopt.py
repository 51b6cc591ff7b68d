"""Side-by-side INT8: our S8S8 / U8S8 Q/DQ models against NVIDIA ModelOpt's, same ONNX, same data.

    scripts/modelopt_env.sh                                   # once: ModelOpt + OpenVINO in their own venv
    python scripts/int8_vs_modelopt.py --models gaitgl,gaitset [--checkpoint gaitgl=proxies/x.pt] > table.md

Per model (project venv): `deploykit export` once (seeded weights, or --checkpoint NAME=PATH); 32
calibration samples (`calib.sources.SyntheticSource`, seed 0) and 12 held-out samples (seed 1000)
saved as .npz; `deploykit build-engine MODEL.onnx --int8 --calib-data calib.npz --calib-method entropy` (U8S8 + S8S8);
ModelOpt's `modelopt.onnx.quantization.quantize(quantize_mode="int8", calibration_method="entropy",
high_precision_dtype="fp32")` on the same ONNX and .npz, run in the ModelOpt venv by subprocess.
Every graph then runs the held-out samples in ONNX Runtime (here, where it loads) and in OpenVINO
(in the ModelOpt venv; INFERENCE_PRECISION_HINT f32, since the CPU plugin defaults to bf16 on
AVX512_BF16 CPUs); outputs come back as .npz. Against FP32 ONNX Runtime: plain cosine, centred
cosine (cosine of out - mean(ref) with ref - mean(ref), mean over samples), nearest-neighbour
agreement among the held-out samples (embeddings) or joint agreement (pose: share of joints within
one heatmap pixel of FP32's decode); Q/DQ counts; latency, 2 threads, interleaved rounds, median ms.

Results per model are cached as WORK/TAG/result.json; --table-only prints the table from them.
The same file runs as the ModelOpt-venv worker (`_modelopt`, `_openvino`): stdlib at the top only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = "gaitgl,gaitset,gaitpart,rga,hrnet-w32,fastpose-res50,prtr-res50"
DEFAULT_VENV = Path(os.environ.get("MODELOPT_VENV", Path.home() / ".cache/deploykit/modelopt-venv"))
GRAPHS = ("fp32", "u8s8", "s8s8", "modelopt")
LABELS = {"fp32": "FP32 (exported ONNX)", "u8s8": "ours U8S8 (`NAME.int8.onnx`, ONNX Runtime)",
          "s8s8": "ours S8S8 (`NAME.int8-s8s8.onnx`, TensorRT)", "modelopt": "ModelOpt int8 entropy"}


def interleaved(runners: dict, rounds: int, iters: int, warmup: int) -> dict:
    """Median ms per runner: warm each, then `rounds` rounds that run every runner `iters` times in turn
    (so a slow spell on the shared CPU hits all graphs alike)."""
    for f in runners.values():
        for _ in range(warmup):
            f()
    times: dict = {k: [] for k in runners}
    for _ in range(rounds):
        for k, f in runners.items():
            for _ in range(iters):
                t = time.perf_counter()
                f()
                times[k].append((time.perf_counter() - t) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


# ---------------------------------------------------------------- workers (ModelOpt venv, no deploykit)
def worker_modelopt(a) -> int:
    import numpy as np
    from modelopt.onnx.quantization import quantize

    data = np.load(a.calib)
    quantize(onnx_path=a.onnx, quantize_mode="int8", calibration_data={k: data[k] for k in data.files},
             calibration_method="entropy", calibration_eps=["cpu"], high_precision_dtype="fp32",
             output_path=a.out, log_level="WARNING")
    return 0


def worker_openvino(a) -> int:
    """Held-out outputs and interleaved latency of each graph in OpenVINO CPU at f32."""
    import numpy as np
    import openvino as ov

    held = np.load(a.heldout)
    n = len(held[held.files[0]])
    core = ov.Core()
    cfg = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": a.threads, "PERFORMANCE_HINT": "LATENCY",
           "NUM_STREAMS": 1}
    outs, meta, runners = {}, {"openvino": ov.__version__, "graphs": {}}, {}
    for spec in a.graphs:
        key, path = spec.split("=", 1)
        try:
            comp = core.compile_model(path, "CPU", cfg)
        except Exception as exc:  # a graph OpenVINO refuses is a result: record it
            meta["graphs"][key] = {"error": " ".join(str(exc).split())[:600]}
            continue
        req = comp.create_infer_request()
        names = [next(nm for nm in o.get_names() if nm in a.outputs) for o in comp.outputs]
        ins = [i.get_any_name() for i in comp.inputs]
        for i in range(n):
            res = req.infer({nm: held[nm][i:i + 1] for nm in ins})
            for o, nm in zip(comp.outputs, names):
                outs.setdefault(f"{key}/{nm}", []).append(np.array(res[o]))
        feed = {nm: held[nm][0:1] for nm in ins}
        runners[key] = (lambda r=req, f=feed: r.infer(f))
        meta["graphs"][key] = {"precision": str(comp.get_property("INFERENCE_PRECISION_HINT")),
                               "threads": int(comp.get_property("INFERENCE_NUM_THREADS"))}
    for key, ms in interleaved(runners, a.rounds, a.iters, a.warmup).items():
        meta["graphs"][key]["ms"] = ms
    np.savez(a.out, **{k: np.concatenate(v) for k, v in outs.items()})
    Path(a.meta).write_text(json.dumps(meta, indent=1))
    return 0


# ---------------------------------------------------------------- driver (project venv)
def _sh(cmd: list, log: Path, env: dict | None = None) -> None:
    with open(log, "a") as fh:
        fh.write("$ " + " ".join(map(str, cmd)) + "\n")
        fh.flush()
        rc = subprocess.call([str(c) for c in cmd], stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    if rc:
        tail = log.read_text().strip().splitlines()[-3:]
        raise RuntimeError(f"{cmd[0]} ... {cmd[3] if len(cmd) > 3 else ''} exited {rc}: {' | '.join(tail)}")


def _deploykit(args: list, log: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    _sh([sys.executable, "-m", "deploykit.cli", *args], log, env)


def _samples(manifest: dict, seed: int, n: int) -> dict:
    import itertools

    import numpy as np
    from deploykit.calib.sources import SyntheticSource

    if ((manifest.get("weights") or {}).get("proxy") or {}).get("task"):
        # a trained proxy is judged on its own task: its generator (pose figures, walkers, persons), as
        # `deploykit parity` does; SyntheticSource images would give a pose proxy flat heatmaps
        from deploykit.verify.heldout import heldout_feeds

        got = heldout_feeds(manifest, n, seed).batches
        return {k: np.concatenate([b[k] for b in got]) for k in got[0]}
    got = list(itertools.islice(SyntheticSource(manifest, seed=seed, warn=False).samples(), n))
    return {k: np.stack([s[k] for s in got]) for k in got[0]}


def _calib_seed(manifest: dict) -> int:
    """0 for seeded models; 500 for a proxy, whose training draws from seed 0 (and held-out is 1000)."""
    return 500 if ((manifest.get("weights") or {}).get("proxy") or {}).get("task") else 0


QUANTIZED_INPUTS = ("Conv", "ConvTranspose", "Gemm", "MatMul")  # TensorRT quantizes these ops' inputs
WEIGHTED = (*QUANTIZED_INPUTS, "BatchNormalization")


def qdq_counts(path: Path) -> dict:
    """Activation Q->DQ pairs, constant Q/DQs (stored or fake-quantized weights and biases), and
    activation Q/DQs placed directly on a weighted op's or BatchNorm's output. TensorRT's rules allow
    the last only as an input of an Add (a residual branch: quantize the skip input) or of another
    weighted op (whose inputs are quantized: RGA's relation MatMul feeding the next MatMul), so those are
    counted apart (`on_weighted_to_add`)."""
    import onnx

    g = onnx.load(str(path), load_external_data=False).graph
    const = {i.name for i in g.initializer} | {o for n in g.node if n.op_type == "Constant" for o in n.output}
    prod = {o: n for n in g.node for o in n.output}
    users: dict = {}
    for n in g.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    act = bad = to_add = 0
    const_q = sum(1 for n in g.node if n.op_type == "DequantizeLinear" and n.input[0] in const)
    for n in g.node:
        if n.op_type != "QuantizeLinear":
            continue
        if n.input[0] in const:  # FP32 weight -> Q -> DQ (fake-quantized constant)
            const_q += 1
            continue
        act += 1
        src = prod.get(n.input[0])
        if src is None or src.op_type not in WEIGHTED:
            continue
        after = [u for dq in users.get(n.output[0], []) for u in users.get(dq.output[0], [])]
        if after and all(u.op_type == "Add" or u.op_type in QUANTIZED_INPUTS for u in after):
            to_add += 1
        else:
            bad += 1
    return {"activation_qdq": act, "constant_qdq": const_q, "on_weighted_outputs": bad, "on_weighted_to_add": to_add}


def _paths(work: Path, name: str) -> dict:
    return {"fp32": work / f"{name}.onnx", "u8s8": work / "engines" / f"{name}.int8.onnx",
            "s8s8": work / "engines" / f"{name}.int8-s8s8.onnx", "modelopt": work / f"{name}.modelopt.onnx"}


def _ort_run(paths: dict, held: dict, outputs: list, a) -> tuple[dict, dict]:
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = a.threads, 1
    n = len(next(iter(held.values())))
    outs, meta, runners = {}, {}, {}
    for key, path in paths.items():
        try:
            sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            res = [sess.run(outputs, {k: v[i:i + 1] for k, v in held.items()}) for i in range(n)]
        except Exception as exc:  # e.g. ModelOpt's batched MatMul with per-channel zero points
            meta[key] = {"error": " ".join(str(exc).split())[:600]}
            continue
        for j, nm in enumerate(outputs):
            outs[f"{key}/{nm}"] = np.concatenate([r[j] for r in res])
        feed = {k: v[0:1] for k, v in held.items()}
        runners[key] = (lambda s=sess, f=feed: s.run(outputs, f))
        meta[key] = {}
    for key, ms in interleaved(runners, a.rounds, a.iters, a.warmup).items():
        meta[key]["ms"] = ms
    return outs, meta


def _metrics(manifest: dict, ref: dict, got: dict, outputs: list) -> dict:
    """Plain and centred cosine per output, and the task agreement, of `got` against `ref`."""
    import numpy as np
    from deploykit.verify.compare import cosine_value

    res = {"outputs": {}}
    for nm in outputs:
        r, g = ref[nm].astype(np.float64), got[nm].astype(np.float64)
        mu = r.mean(axis=0)
        res["outputs"][nm] = {"cosine": float(np.mean([cosine_value(r[i], g[i]) for i in range(len(r))])),
                              "centred": float(np.mean([cosine_value(r[i] - mu, g[i] - mu) for i in range(len(r))]))}
    if manifest["model"]["family"] == "pose":
        from deploykit.verify.gates import gates_for
        from deploykit.verify.task_metrics import keypoint_agreement

        split = lambda d: [{k: d[k][i:i + 1] for k in outputs} for i in range(len(d[outputs[0]]))]  # noqa: E731
        kp = keypoint_agreement(manifest, split(ref), split(got), gates_for("int8"))
        # flat heatmaps (random weights) make joints meaningless: the value is then None, printed "n/a"
        res["task"] = {"name": "PCK agreement", "value": kp.get("pck_agreement"), "mean_px": kp["mean_px_all"],
                       "applicable": kp["applicable"], "why": kp.get("why")}
    else:
        from deploykit.runtime.match import distance

        nm, metric = _task_output(manifest)
        nn = []
        for d in (ref, got):
            dist = distance(d[nm].astype(np.float64), d[nm].astype(np.float64), metric)
            np.fill_diagonal(dist, np.inf)
            nn.append(np.argmin(dist, axis=1))
        res["task"] = {"name": "NN", "value": float(np.mean(nn[0] == nn[1])), "metric": metric}
    return res


def _task_output(manifest: dict) -> tuple[str, str]:
    from deploykit.verify import task_metrics

    return task_metrics._embedding_output(manifest)  # the output and metric that matching uses


def run_model(name: str, ckpt: str | None, a) -> dict:
    import numpy as np

    tag = name + ("-ckpt" if ckpt else "")
    work = Path(a.work) / tag
    work.mkdir(parents=True, exist_ok=True)
    log = work / "log.txt"
    log.write_text("")
    t0 = time.time()
    _deploykit(["export", name, "--out", work, *(["--checkpoint", ckpt] if ckpt else [])], log)
    onnx_path = work / f"{name}.onnx"
    manifest = json.loads((work / f"{name}.manifest.json").read_text())
    np.savez(work / "calib.npz", **_samples(manifest, _calib_seed(manifest), a.calib_samples))
    held = _samples(manifest, 1000, a.heldout)
    np.savez(work / "heldout.npz", **held)
    times = {"export+data": time.time() - t0}
    t0 = time.time()
    _deploykit(["build-engine", onnx_path, "--int8", "--calib-data", work / "calib.npz", "--calib-samples",
                a.calib_samples, "--calib-method", "entropy",  # ModelOpt's method below: same range method on both sides
                "--backend", "onnxruntime", "--out", work / "engines"], log)
    times["ours"] = time.time() - t0
    t0 = time.time()
    vpy = Path(a.modelopt_venv) / "bin" / "python"
    paths = _paths(work, name)
    _sh([vpy, __file__, "_modelopt", onnx_path, work / "calib.npz", paths["modelopt"]], log)
    times["modelopt"] = time.time() - t0
    outputs = [o["name"] for o in manifest["outputs"]]
    t0 = time.time()
    ort_outs, ort_meta = _ort_run(paths, held, outputs, a)
    _sh([vpy, __file__, "_openvino", "--heldout", work / "heldout.npz", "--out", work / "openvino.npz",
         "--meta", work / "openvino.json", "--outputs", *outputs, "--threads", a.threads, "--rounds", a.rounds,
         "--iters", a.iters, "--warmup", a.warmup, "--graphs", *[f"{k}={p}" for k, p in paths.items()]], log)
    times["measure"] = time.time() - t0
    ov = np.load(work / "openvino.npz")
    ov_meta = json.loads((work / "openvino.json").read_text())
    ref = {nm: ort_outs[f"fp32/{nm}"] for nm in outputs}
    rows = {}
    for key, path in paths.items():
        row = {"qdq": qdq_counts(path), "ort": ort_meta.get(key, {}), "openvino": ov_meta["graphs"].get(key, {})}
        for rt, outs in (("ort", ort_outs), ("openvino", ov)):
            if f"{key}/{outputs[0]}" in outs:
                row[rt].update(_metrics(manifest, ref, {nm: outs[f"{key}/{nm}"] for nm in outputs}, outputs))
        rows[key] = row
    result = {"model": name, "weights": ckpt or "seeded random (seed 0)", "family": manifest["model"]["family"],
              "outputs": outputs, "table_outputs": _table_outputs(manifest, outputs), "rows": rows,
              "seconds": times, "versions": _versions(ov_meta), "calib_samples": a.calib_samples,
              "heldout": a.heldout, "threads": a.threads}
    (work / "result.json").write_text(json.dumps(result, indent=1))
    return result


def _table_outputs(manifest: dict, outputs: list) -> list:
    return outputs if manifest["model"]["family"] == "pose" else [_task_output(manifest)[0]]


def _versions(ov_meta: dict) -> dict:
    import importlib.metadata as md

    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()  # noqa: E731
    # the last commit that changed deploykit/ names the quantizer code measured (scripts/ may move on)
    commit = git("log", "-1", "--format=%h", "--", "deploykit") + ("+dirty" if git("status", "--porcelain", "--", "deploykit") else "")
    return {"deploykit_commit": commit, "head": git("rev-parse", "--short", "HEAD"), "onnxruntime": md.version("onnxruntime"), "onnx": md.version("onnx"),
            "openvino": ov_meta.get("openvino"), "nvidia-modelopt": _modelopt_version()}


def _modelopt_version() -> str:
    vpy = Path(ARGS.modelopt_venv) / "bin" / "python"
    cmd = [str(vpy), "-c", "import importlib.metadata as m; print(m.version('nvidia-modelopt'))"]
    return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()


def _cell(row: dict, rt: str, field: str, outputs: list, fmt: str) -> str:
    r = row.get(rt, {})
    if "error" in r:
        return "–"
    if field == "task":
        if "task" not in r:
            return "–"
        return "n/a" if r["task"]["value"] is None else format(r["task"]["value"], fmt)
    if "outputs" not in r:
        return "–"
    return " / ".join(format(r["outputs"][nm][field], fmt) for nm in outputs)


def table(results: list) -> str:
    head = ("| model (outputs) | graph | cosine (OV) | centred (OV) | NN / joints (OV) | centred (ORT) | "
            "NN / joints (ORT) | act. Q/DQ | on weighted outputs (to Add / weighted input) | const. Q/DQ | ORT ms | OV ms |")
    lines = [head, "|" + "---|" * 2 + "---:|" * 10]
    for res in results:
        outs = res["table_outputs"]
        label = f"{res['model']} ({' / '.join(outs)})" + ("" if res["weights"].startswith("seeded") else " [ckpt]")
        for key in GRAPHS:
            row = res["rows"][key]
            q = row["qdq"]
            ms = lambda rt: f"{row[rt]['ms']:.1f}" if "ms" in row.get(rt, {}) else "–"  # noqa: E731
            lines.append(f"| {label} | {LABELS[key].replace('NAME', res['model'])} | "
                         f"{_cell(row, 'openvino', 'cosine', outs, '.5f')} | {_cell(row, 'openvino', 'centred', outs, '.3f')} | "
                         f"{_cell(row, 'openvino', 'task', outs, '.2f')} | {_cell(row, 'ort', 'centred', outs, '.3f')} | "
                         f"{_cell(row, 'ort', 'task', outs, '.2f')} | {q['activation_qdq']} | {q['on_weighted_outputs']} ({q['on_weighted_to_add']}) | "
                         f"{q['constant_qdq']} | {ms('ort')} | {ms('openvino')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    global ARGS
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] in ("_modelopt", "_openvino"):
        wp = argparse.ArgumentParser()
        if argv[0] == "_modelopt":
            wp.add_argument("onnx"), wp.add_argument("calib"), wp.add_argument("out")
            return worker_modelopt(wp.parse_args(argv[1:]))
        for flag in ("--heldout", "--out", "--meta"):
            wp.add_argument(flag, required=True)
        wp.add_argument("--graphs", nargs="+", required=True)
        wp.add_argument("--outputs", nargs="+", required=True)
        for flag in ("--threads", "--rounds", "--iters", "--warmup"):
            wp.add_argument(flag, type=int, required=True)
        return worker_openvino(wp.parse_args(argv[1:]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated (default {DEFAULT_MODELS})")
    ap.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH",
                    help="also run NAME exported from this checkpoint (repeatable)")
    ap.add_argument("--modelopt-venv", default=str(DEFAULT_VENV), help="made by scripts/modelopt_env.sh")
    ap.add_argument("--work", default=str(Path.home() / ".cache/deploykit/int8_vs_modelopt"))
    ap.add_argument("--calib-samples", type=int, default=32)
    ap.add_argument("--heldout", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--table-only", action="store_true", help="print the table from WORK/*/result.json")
    ARGS = a = ap.parse_args(argv)
    if not (Path(a.modelopt_venv) / "bin" / "python").exists() and not a.table_only:
        print(f"no ModelOpt venv at {a.modelopt_venv}: run scripts/modelopt_env.sh {a.modelopt_venv} first "
              f"(or pass --modelopt-venv)", file=sys.stderr)
        return 2
    jobs = [(m, None) for m in a.models.split(",") if m] + [tuple(c.split("=", 1)) for c in a.checkpoint]
    results = []
    for name, ckpt in jobs:
        cached = Path(a.work) / (name + ("-ckpt" if ckpt else "")) / "result.json"
        if a.table_only:
            if cached.exists():  # Q/DQ counts are re-read from the graphs (cheap; the counting may have changed)
                res = json.loads(cached.read_text())
                for key, path in _paths(cached.parent, name).items():
                    res["rows"][key]["qdq"] = qdq_counts(path)
                results.append(res)
            continue
        t0 = time.time()
        try:
            results.append(run_model(name, ckpt, a))
        except Exception as exc:  # one model's failure is reported and the others still run
            print(f"{name}: FAILED: {exc}", file=sys.stderr)
            continue
        print(f"{name}{' (' + ckpt + ')' if ckpt else ''}: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    if results:
        v = results[0]["versions"]
        print(f"<!-- deploykit {v['deploykit_commit']}, onnxruntime {v['onnxruntime']}, openvino {v['openvino']}, "
              f"nvidia-modelopt {v['nvidia-modelopt']} -->")
        print(table(results))
    return 0


ARGS = None

if __name__ == "__main__":
    sys.exit(main())
