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

# Held-out protocol of the gait proxy: other identities (another seed), gallery = each identity's
# first "nm" sequence, probes = the rest (nm, bg, cl). Shared with tests/scripts/test_train_proxy.py.
GAIT_EVAL = dict(num_ids=24, seqs_per_id=6, frames=30, seed=1000)


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
    sils, ids, _ = walkers(args.train_ids, args.seqs_per_id, 30, seed=args.seed)
    ev_sils, ev_ids, ev_conds = walkers(**GAIT_EVAL)
    print(f"data: train {sils.shape} ({args.train_ids} ids), held-out {ev_sils.shape} in {time.time() - t0:.0f} s",
          flush=True)
    torch.manual_seed(args.seed)
    net = models.build(args.model).train()
    head = torch.nn.Linear(net.Head.fc_bin.shape[-1], args.train_ids)  # CE on the part-mean (training only)
    opt = torch.optim.Adam(list(net.parameters()) + list(head.parameters()), lr=args.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(args.steps * 0.7)], 0.1)
    rng = np.random.default_rng(args.seed + 1)
    by_id = [np.flatnonzero(ids == i) for i in range(args.train_ids)]
    start, step = time.time(), 0
    while step < args.steps:
        if time.time() - start > args.minutes * 60:
            print(f"WARNING: stopped at step {step} of {args.steps} by --minutes {args.minutes}; this run is not "
                  f"reproducible", flush=True)
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
    net.eval()
    with torch.no_grad():
        emb = torch.cat([net(torch.from_numpy(ev_sils[i:i + 8])) for i in range(0, len(ev_sils), 8)]).numpy()
    res = gait_rank1(emb, ev_ids, ev_conds, GAIT_EVAL["seqs_per_id"])
    chance = 1.0 / GAIT_EVAL["num_ids"]
    print(f"held-out (seed {GAIT_EVAL['seed']}, {GAIT_EVAL['num_ids']} ids, chance {chance:.3f}): "
          + ", ".join(f"{k} rank-1 {v['rank1']:.3f} mAP {v['mAP']:.3f}" for k, v in res.items()), flush=True)
    _save(net, step, args, {"task": "deploykit.synth.walkers", "heldout": res, "heldout_protocol": GAIT_EVAL})
    print(f"total {time.time() - t0:.0f} s", flush=True)


def _save(net, step: int, args, extra: dict) -> None:
    import torch

    sd = {k: (v.detach().half() if v.is_floating_point() else v.detach()) for k, v in net.state_dict().items()}
    meta = {"what": "synthetic proxy: trained on deploykit.synth data, NOT a recognition model",
            "model": args.model, "steps": step, "seed": args.seed, "argv": " ".join(sys.argv[1:]), **_plain(extra)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    torch.save({"model": sd, "iteration": step, "proxy": meta}, tmp)
    os.replace(tmp, out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, fp16, {{'model', 'iteration', 'proxy'}})", flush=True)


def _plain(x):
    """Metadata as str/int/float/dict/list only (what torch.load(weights_only=True) reads back)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x if isinstance(x, (str, int, float, bool)) else str(x)


FAMILIES = {"gait": train_gait}
DEFAULTS = {"gait": dict(model="gaitset", out="proxies/gaitset-proxy.pt", steps=200, lr=1e-3)}


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
    ap.add_argument("--ce", type=float, default=1.0, help="cross-entropy weight (default 1)")
    ap.add_argument("--log-every", type=int, default=10)
    args = ap.parse_args(argv)
    for k, v in DEFAULTS[args.family].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    FAMILIES[args.family](args)


if __name__ == "__main__":
    main()
