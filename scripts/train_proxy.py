"""Train a proxy model on a synthetic task, deterministically on the CPU, in bounded time.

A proxy is a synthetic stand-in: an upstream architecture trained on deploykit.synth's tasks with
known answers, so that INT8/FP16 accuracy can be measured as a task metric (rank-1, mAP, PCK).
It is not a recognition model. The checkpoint is written in the upstream layout (OpenGait:
`{'model': state_dict, 'iteration': k}`) in fp16, so `deploykit export NAME --checkpoint FILE`
loads it through the normal strict path.

    python scripts/train_proxy.py gait --steps 200 --out proxies/gaitset-proxy.pt

Same arguments, same threads -> the same weights (seeded data and init, deterministic algorithms);
`--minutes` is a safety cap: when it stops training before `--steps`, it says so and the run is
then not reproducible.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

# Held-out protocol of the gait proxy: other identities (another seed) seen from every view in
# synth.VIEWS while training sees side views only (--train-views 90), gallery = each identity's
# first sequence, probes = the rest (nm, bg, cl); --eval-ids changes the identity count. Side views
# alone would be too easy (rank-1 0.99 after 200 steps): cross-view keeps the metric informative.
GAIT_EVAL = dict(num_ids=24, seqs_per_id=6, frames=30, seed=1000)


def _out_of_time(start: float, step: int, args) -> bool:
    """Whether the --minutes budget is spent; says so, since a cut run is not reproducible."""
    if time.time() - start <= args.minutes * 60:
        return False
    print(f"WARNING: stopped at step {step} of {args.steps} by --minutes {args.minutes}; this run is not "
          f"reproducible", flush=True)
    return True


def gait_rank1(emb: np.ndarray, ids: np.ndarray, conds: np.ndarray, seqs_per_id: int) -> dict:
    """Rank-1 / mAP of embeddings [n, c, p] under the held-out protocol (gallery: sequence 0 of each id)."""
    from deploykit.runtime.match import distance, evaluate

    gal = np.arange(len(ids)) % seqs_per_id == 0
    d = distance(emb[~gal], emb[gal], "euclidean_per_part_mean")
    res = {"all": evaluate(d, ids[~gal], ids[gal])}
    for c in np.unique(conds[~gal]):
        sel = conds[~gal] == c
        res[str(c)] = evaluate(d[sel], ids[~gal][sel], ids[gal])
    return {k: {"rank1": float(v["cmc"][0]), "mAP": float(v["mAP"])} for k, v in res.items()}


def _gait_eval(net, sils, ids, conds, protocol: dict, label: str) -> dict:
    import torch

    net.eval()
    with torch.no_grad():
        emb = torch.cat([net(torch.from_numpy(sils[i:i + 8])) for i in range(0, len(sils), 8)]).numpy()
    res = gait_rank1(emb, ids, conds, protocol["seqs_per_id"])
    print(f"held-out {label} (seed {protocol['seed']}, {protocol['num_ids']} ids, all views, chance "
          f"{1.0 / protocol['num_ids']:.3f}): "
          + ", ".join(f"{k} rank-1 {v['rank1']:.3f} mAP {v['mAP']:.3f}" for k, v in res.items()), flush=True)
    return res


def _setup(seed: int, threads: int):
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    return torch


def triplet_loss(emb, labels, margin: float = 0.2):
    """OpenGait's TripletLoss: per part, batch-all, hinge on d(a, p) - d(a, n) + margin, mean over the
    non-zero terms. emb [n, c, p] float32, labels [n] int64 -> scalar."""
    import torch

    x = emb.permute(2, 0, 1).contiguous()  # [p, n, c]
    d = torch.cdist(x, x).clamp_min(1e-9)  # [p, n, n]
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool)
    pos, neg = same & ~eye, ~same
    ap = d.unsqueeze(3)  # [p, a, pos, 1]
    an = d.unsqueeze(2)  # [p, a, 1, neg]
    mask = (pos.unsqueeze(2) & neg.unsqueeze(1)).unsqueeze(0)  # [1, a, pos, neg]
    hinge = torch.relu(ap - an + margin) * mask
    num = (hinge > 0).sum().clamp_min(1)
    return hinge.sum() / num


def train_gait(args) -> None:
    torch = _setup(args.seed, args.threads)
    from deploykit import models
    from deploykit.synth import walkers

    t0 = time.time()
    views = tuple(int(v) for v in args.train_views.split(","))
    sils, ids, _, _ = walkers(args.train_ids, args.seqs_per_id, 30, seed=args.seed, views=views)
    protocol = dict(GAIT_EVAL, num_ids=args.eval_ids)
    ev_sils, ev_ids, ev_conds, _ = walkers(**protocol)
    print(f"data: train {sils.shape} ({args.train_ids} ids), held-out {ev_sils.shape} in {time.time() - t0:.0f} s",
          flush=True)
    torch.manual_seed(args.seed)
    net = models.build(args.model).train()
    head = torch.nn.Linear(net.Head.fc_bin.shape[-1], args.train_ids)  # CE on the part-mean (training only)
    opt = torch.optim.Adam(list(net.parameters()) + list(head.parameters()), lr=args.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(args.steps * 0.7)], 0.1)
    baseline = _gait_eval(net, ev_sils, ev_ids, ev_conds, protocol, "random weights (before training)")
    net.train()
    rng = np.random.default_rng(args.seed + 1)
    by_id = [np.flatnonzero(ids == i) for i in range(args.train_ids)]
    start, step = time.time(), 0
    while step < args.steps:
        if _out_of_time(start, step, args):
            break
        who = rng.choice(args.train_ids, args.p, replace=False)
        idx = np.concatenate([rng.choice(by_id[i], args.k, replace=False) for i in who])
        frames = np.stack([np.sort(rng.choice(30, args.train_frames, replace=False)) for _ in idx])
        x = torch.from_numpy(np.stack([sils[i][f] for i, f in zip(idx, frames)]))  # [n, s, 64, 44]
        y = torch.from_numpy(ids[idx])
        emb = net(x)  # [n, 256, 62]
        loss_t = triplet_loss(emb, y)
        loss_c = torch.nn.functional.cross_entropy(head(emb.mean(-1)), y)
        opt.zero_grad()
        (loss_t + args.ce * loss_c).backward()
        opt.step()
        sched.step()
        step += 1
        if step % args.log_every == 0 or step == args.steps:
            print(f"step {step}/{args.steps} triplet {loss_t.item():.4f} ce {loss_c.item():.3f} "
                  f"{time.time() - start:.0f} s", flush=True)
    res = _gait_eval(net, ev_sils, ev_ids, ev_conds, protocol, "trained")
    _save(net, step, args, {"task": "deploykit.synth.walkers", "heldout": res, "heldout_protocol": protocol,
                            "heldout_random_weights": baseline, "train_views": args.train_views})
    print(f"total {time.time() - t0:.0f} s", flush=True)


def pck(pred_hm: np.ndarray, gt_kp: np.ndarray, input_hw, thr: float = 0.5) -> float:
    """HRNet's training accuracy: argmax joints vs the truth, distance / (heatmap size / 10) < thr.

    pred_hm [n, 17, hh, hw], gt_kp [n, 17, 2] in input pixels -> share of joints within thr."""
    n, j, hh, hw = pred_hm.shape
    flat = pred_hm.reshape(n, j, -1).argmax(-1)
    xy = np.stack([flat % hw, flat // hw], -1).astype(np.float64)
    gt = gt_kp / np.array([input_hw[1] / hw, input_hw[0] / hh])
    d = np.linalg.norm((xy - gt) / np.array([hw / 10, hh / 10]), axis=-1)
    return float((d < thr).mean())


def train_pose(args) -> None:
    torch = _setup(args.seed, args.threads)
    from deploykit import models
    from deploykit.synth import heatmap_targets, pose_figures

    net = models.build(args.model).train()
    for m in net.modules():  # the registry randomises BatchNorm for parity work; train from the usual init
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_parameters()
    spec = models.spec(args.model)
    size = tuple(spec.input_specs()[0].shape[2:])  # the registry's input (h, w): no override needed
    ev_x, ev_kp, _ = pose_figures(args.eval_ids, seed=1000, size=size)
    with torch.no_grad():
        hm_hw = tuple(net(torch.from_numpy(ev_x[:1])).shape[2:])
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    start, step = time.time(), 0
    while step < args.steps:
        if _out_of_time(start, step, args):
            break
        x, kp, _ = pose_figures(args.p * args.k, seed=args.seed * 1_000_003 + step, size=size)
        target = torch.from_numpy(heatmap_targets(kp, size, hm_hw))
        loss = 0.5 * torch.nn.functional.mse_loss(net(torch.from_numpy(x)), target)  # HRNet's JointsMSELoss
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % args.log_every == 0 or step == args.steps:
            print(f"step {step}/{args.steps} mse {loss.item():.6f} {time.time() - start:.0f} s", flush=True)
    net.eval()
    with torch.no_grad():
        hm = torch.cat([net(torch.from_numpy(ev_x[i:i + 8])) for i in range(0, len(ev_x), 8)]).numpy()
    res = {"pck@0.5": pck(hm, ev_kp, size), "pck@0.2": pck(hm, ev_kp, size, 0.2)}
    print(f"held-out ({args.eval_ids} figures, seed 1000): " + ", ".join(f"{k} {v:.3f}" for k, v in res.items()),
          flush=True)
    _save(net, step, args, {"task": "deploykit.synth.pose_figures", "heldout": res}, layout="state_dict")


def _save(net, step: int, args, extra: dict, layout: str = "model") -> None:
    """fp16 state dict under the upstream wrapper key: OpenGait `model`, HRNet `state_dict`."""
    import torch

    sd = {k: (v.detach().half() if v.is_floating_point() else v.detach()) for k, v in net.state_dict().items()}
    meta = {"what": "synthetic proxy: trained on deploykit.synth data, NOT a recognition model",
            "model": args.model, "steps": step, "seed": args.seed, "argv": " ".join(sys.argv[1:]), **_plain(extra)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    torch.save({layout: sd, "iteration" if layout == "model" else "epoch": step, "proxy": meta}, tmp)
    os.replace(tmp, out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, fp16, under {layout!r})", flush=True)


def _plain(x):
    """Metadata as str/int/float/dict/list only (what torch.load(weights_only=True) reads back)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x if isinstance(x, (str, int, float, bool)) else str(x)


FAMILIES = {"gait": train_gait, "pose": train_pose}
DEFAULTS = {"gait": dict(model="gaitset", out="proxies/gaitset-proxy.pt", steps=200, lr=1e-3),
            "pose": dict(model="hrnet-w32", out="proxies/hrnet-w32-proxy.pth", steps=2000, lr=1e-3)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("family", choices=sorted(FAMILIES))
    ap.add_argument("--model", help="registry name (gait: gaitset)")
    ap.add_argument("--out", help="checkpoint path")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--minutes", type=float, default=30.0, help="wall-time cap (default 30)")
    ap.add_argument("--lr", type=float)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2; part of reproducibility)")
    ap.add_argument("--train-ids", type=int, default=48)
    ap.add_argument("--seqs-per-id", type=int, default=6)
    ap.add_argument("--p", type=int, default=6, help="identities per batch (default 6)")
    ap.add_argument("--k", type=int, default=3, help="sequences per identity in a batch (default 3)")
    ap.add_argument("--train-frames", type=int, default=6, help="frames per training clip (default 6)")
    ap.add_argument("--train-views", default="90", help="gait: training views, comma-separated (default 90)")
    ap.add_argument("--eval-ids", type=int, default=GAIT_EVAL["num_ids"], help="held-out identities (default 24)")
    ap.add_argument("--ce", type=float, default=1.0, help="cross-entropy weight (default 1)")
    ap.add_argument("--log-every", type=int, default=10)
    args = ap.parse_args(argv)
    for k, v in DEFAULTS[args.family].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    FAMILIES[args.family](args)


if __name__ == "__main__":
    main()
