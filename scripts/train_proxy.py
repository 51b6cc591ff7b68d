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
from typing import Optional

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


def _optimise(opt, sched, loss, step: int, args, start: float, losses: str) -> int:
    """One optimiser and scheduler step on `loss`; logs every --log-every steps; returns step + 1."""
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    step += 1
    if step % args.log_every == 0 or step == args.steps:
        print(f"step {step}/{args.steps} {losses} {time.time() - start:.0f} s", flush=True)
    return step


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
        step = _optimise(opt, sched, loss_t + args.ce * loss_c, step, args, start,
                         f"triplet {loss_t.item():.4f} ce {loss_c.item():.3f}")
    res = _gait_eval(net, ev_sils, ev_ids, ev_conds, protocol, "trained")
    _save(net, step, args, {"task": "deploykit.synth.walkers", "heldout": res, "heldout_protocol": protocol,
                            "heldout_random_weights": baseline, "train_views": args.train_views})
    print(f"total {time.time() - t0:.0f} s", flush=True)


def pck(pred_hm: np.ndarray, gt_kp: np.ndarray, input_hw, thr: float = 0.5) -> float:
    """HRNet's training accuracy (one definition: `verify.task_metrics.heatmap_pck`)."""
    from deploykit.verify.task_metrics import heatmap_pck

    return heatmap_pck(pred_hm, gt_kp, input_hw, thr)


def _size(text: Optional[str], default) -> tuple:
    """'HxW' -> (h, w); None -> the registry's input size `default`."""
    if text is None:
        return tuple(int(v) for v in default)
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--input-size {text!r}: give HxW, e.g. 128x96") from None
    return h, w


def _pose_eval(net, ev_x, ev_kp, size) -> dict:
    import torch

    net.eval()
    with torch.no_grad():
        hm = torch.cat([net(torch.from_numpy(ev_x[i:i + 8])) for i in range(0, len(ev_x), 8)]).numpy()
    net.train()
    return {"pck@0.5": pck(hm, ev_kp, size), "pck@0.2": pck(hm, ev_kp, size, 0.2)}


def _hrnet_init(torch, net) -> None:
    """Upstream `PoseHighResolutionNet.init_weights` without a pretrained file: conv and deconv weights
    N(0, 0.001), biases 0, BatchNorm 1/0. PyTorch's default init starts the heatmaps at MSE ~6 instead
    of ~0.002 and the first hundred steps go to undoing it. The FastPose proxy starts this way too, plus
    identity bottlenecks (`pose_start`; upstream starts its ResNet from ImageNet weights, which cannot be
    downloaded here; BatchNorm follows every conv but the last, so the small weights only keep the first
    heatmaps near 0)."""
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            torch.nn.init.normal_(m.weight, std=0.001)
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
        elif isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_parameters()


def pose_preprocess(model: str, size: tuple) -> dict:
    """The model's own crop and normalisation at `size` (FastPose: mean only; HRNet: ImageNet mean/std):
    what the calibration and held-out data of an export of the checkpoint use (its manifest's preprocess).
    HRNet and FastPose are fully convolutional, so any multiple of 32 goes."""
    from deploykit import models

    return dict(models.spec(model).at_input_size(*size).preprocess)


def _zero_residual(torch, net) -> None:
    """Every bottleneck's last BatchNorm at weight 0, so each residual block starts as the identity
    (torchvision's `zero_init_residual`). FastPose's SE-ResNet-50 keeps only a 4x3 map at 128x96 input; with
    the HRNet start alone its held-out PCK@0.5 sat at 0.40 from step 700 to 950 (proxies/README.md)."""
    from deploykit.models.backbones import Bottleneck

    for m in net.modules():
        if isinstance(m, Bottleneck):
            torch.nn.init.zeros_(m.bn3.weight)


def pose_start(torch, net, model: str, init: str) -> None:
    """HRNet: upstream's start. FastPose: the same, plus identity bottlenecks unless `init` is 'default'."""
    _hrnet_init(torch, net)
    if model.startswith("fastpose") and init == "zero-residual":
        _zero_residual(torch, net)


def train_pose(args) -> None:
    torch = _setup(args.seed, args.threads)
    from deploykit import models
    from deploykit.synth import heatmap_targets, pose_figures

    net = models.build(args.model).train()
    pose_start(torch, net, args.model, args.init)
    size = _size(args.input_size, models.spec(args.model).input_specs()[0].shape[2:])
    pre = pose_preprocess(args.model, size)
    ev_x, ev_kp, _ = pose_figures(args.eval_ids, seed=1000, preprocess=pre)
    with torch.no_grad():
        hm_hw = tuple(net(torch.from_numpy(ev_x[:1])).shape[2:])
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(args.steps * 0.8)], 0.1)
    curve = [{"step": 0, **_pose_eval(net, ev_x, ev_kp, size)}]
    start, step = time.time(), 0
    while step < args.steps:
        if _out_of_time(start, step, args):
            break
        x, kp, _ = pose_figures(args.p * args.k, seed=args.seed * 1_000_003 + step, preprocess=pre)
        target = torch.from_numpy(heatmap_targets(kp, size, hm_hw))
        loss = 0.5 * torch.nn.functional.mse_loss(net(torch.from_numpy(x)), target)  # HRNet's JointsMSELoss
        step = _optimise(opt, sched, loss, step, args, start, f"mse {loss.item():.6f}")
        if step % args.eval_every == 0 and step < args.steps:
            curve.append({"step": step, "seconds": round(time.time() - start), **_pose_eval(net, ev_x, ev_kp, size)})
            print(f"held-out at step {step}: {curve[-1]}", flush=True)
            _save(net, step, args, _pose_meta(curve, size, hm_hw, args, partial=True), layout="state_dict")
    curve.append({"step": step, "seconds": round(time.time() - start), **_pose_eval(net, ev_x, ev_kp, size)})
    net.eval()
    print(f"held-out ({args.eval_ids} figures, seed 1000, input {size[0]}x{size[1]}): {curve[-1]}", flush=True)
    _save(net, step, args, _pose_meta(curve, size, hm_hw, args, partial=False), layout="state_dict")


def _pose_meta(curve, size, hm_hw, args, partial: bool) -> dict:
    return {"task": "deploykit.synth.pose_figures", "heldout": {k: v for k, v in curve[-1].items() if k.startswith("pck")},
            "heldout_protocol": {"num": args.eval_ids, "seed": 1000}, "curve": curve, "input_size": list(size),
            "heatmap_size": list(hm_hw), "partial": partial}


# Held-out protocol of the re-ID proxy: other identities (seed 1000), query = camera 0, gallery =
# camera 1 (cross-camera, as Market-1501), cosine distance of `feat` (RGA's test feature).
REID_EVAL = dict(num_ids=32, imgs_per_id=4, seed=1000)


def _reid_embed(net, x) -> np.ndarray:
    import torch

    net.eval()
    with torch.no_grad():
        emb = torch.cat([net(torch.from_numpy(x[i:i + 16]))[1] for i in range(0, len(x), 16)]).numpy()
    net.train()
    return emb


def reid_rank1(emb: np.ndarray, ids: np.ndarray, cams: np.ndarray) -> dict:
    """Rank-1 / mAP of embeddings [n, c]: queries = camera 0, gallery = the other cameras, cosine distance."""
    from deploykit.runtime.match import distance, evaluate

    q = cams == 0
    res = evaluate(distance(emb[q], emb[~q], "cosine"), ids[q], ids[~q], cams[q], cams[~q])
    return {"rank1": float(res["cmc"][0]), "mAP": float(res["mAP"])}


def batch_hard_triplet(emb, labels, margin: float = 0.3):
    """Batch-hard triplet on Euclidean distance (hardest positive and negative per anchor), margin 0.3.
    emb [n, c] float32, labels [n] int64 -> scalar."""
    import torch

    d = torch.cdist(emb, emb).clamp_min(1e-9)  # [n, n]
    same = labels[:, None] == labels[None, :]
    hardest_pos = (d * same).max(1).values
    hardest_neg = d.masked_fill(same, float("inf")).min(1).values
    return torch.relu(hardest_pos - hardest_neg + margin).mean()


def _warmup_then_step(torch, opt, warmup: int, milestone: int):
    """Learning rate rising linearly from 10% to 100% over `warmup` steps (as reid-strong-baseline warms
    up), then x0.1 from step `milestone`."""
    def factor(step: int) -> float:
        rise = 0.1 + 0.9 * step / warmup if step < warmup else 1.0
        return rise * (0.1 if step >= milestone else 1.0)

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _reid_init(torch, net) -> None:
    """A from-scratch start that trains: convs as torchvision's ResNet (Kaiming normal, fan_out), the last
    BatchNorm of every bottleneck and of every RGA attention head at weight 0 (each residual block starts
    as the identity and each attention map as a uniform 0.5: torchvision's `zero_init_residual`), and the
    classifier N(0, 0.001) as reid-strong-baseline's `weights_init_classifier`. With PyTorch's default
    init the 50-layer network starts chaotic (held-out features almost constant) and both losses first
    pull it further towards a constant output (proxies/README.md)."""
    from deploykit.models.backbones import Bottleneck
    from deploykit.models.reid.rga import RGAModule

    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_parameters()
    for m in net.modules():
        if isinstance(m, Bottleneck):
            torch.nn.init.zeros_(m.bn3.weight)
        elif isinstance(m, RGAModule):
            for head in (m.W_spatial, m.W_channel):  # conv, BN, ReLU, conv, BN(1): the logit's BN
                torch.nn.init.zeros_(head[-1].weight)
    torch.nn.init.normal_(net.cls.weight, std=0.001)


def train_reid(args) -> None:
    torch = _setup(args.seed, args.threads)
    from deploykit import models
    from deploykit.synth import reid_persons

    t0 = time.time()
    size = _size(args.input_size, models.spec(args.model).input_specs()[0].shape[2:])
    x, ids, _ = reid_persons(args.train_ids, args.seqs_per_id, seed=args.seed, size=size)
    ev_x, ev_ids, ev_cams = reid_persons(**dict(REID_EVAL, num_ids=args.eval_ids), size=size)
    print(f"data: train {x.shape} ({args.train_ids} ids), held-out {ev_x.shape} in {time.time() - t0:.0f} s",
          flush=True)
    torch.manual_seed(args.seed)
    # the upstream classifier size (767 = CUHK03) is kept so the checkpoint loads with the registry's config;
    # labels use the first train_ids classes
    net = models.build(args.model, height=size[0], width=size[1]).train()
    if args.init == "zero-residual":
        _reid_init(torch, net)
    baseline = reid_rank1(_reid_embed(net, ev_x), ev_ids, ev_cams)
    print(f"held-out random weights: {baseline}", flush=True)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = _warmup_then_step(torch, opt, args.warmup, int(args.steps * 0.7))
    rng = np.random.default_rng(args.seed + 1)
    by_id = [np.flatnonzero(ids == i) for i in range(args.train_ids)]
    curve, start, step = [{"step": 0, **baseline}], time.time(), 0
    while step < args.steps:
        if _out_of_time(start, step, args):
            break
        who = rng.choice(args.train_ids, args.p, replace=False)
        idx = np.concatenate([rng.choice(by_id[i], args.k, replace=False) for i in who])
        xb = torch.from_numpy(x[idx])
        if step % 2:  # horizontal flip, RGA's training augmentation
            xb = xb.flip(-1)
        y = torch.from_numpy(ids[idx])
        feat_pre_bn, feat = net(xb)
        loss_t = batch_hard_triplet(feat_pre_bn, y)
        # BNNeck: CE on the post-BN feature, over the identities trained: the other rows of the 767 are never
        # a label, so the loss's chance level is log(train_ids), the figure the log is read against
        loss_c = torch.nn.functional.cross_entropy(net.cls(feat)[:, :args.train_ids], y)
        norm = feat_pre_bn.norm(dim=1).mean().item()  # a triplet-driven collapse shrinks it
        step = _optimise(opt, sched, args.triplet * loss_t + args.ce * loss_c, step, args, start,
                         f"triplet {loss_t.item():.4f} ce {loss_c.item():.3f} |feat| {norm:.2f}")
        if step % args.eval_every == 0 and step < args.steps:
            curve.append({"step": step, "seconds": round(time.time() - start),
                          **reid_rank1(_reid_embed(net, ev_x), ev_ids, ev_cams)})
            print(f"held-out at step {step}: {curve[-1]}", flush=True)
            _save(net, step, args, _reid_meta(curve[-1], baseline, curve, size, args, partial=True), layout="state_dict")
            net.train()
    res = reid_rank1(_reid_embed(net, ev_x), ev_ids, ev_cams)
    curve.append({"step": step, "seconds": round(time.time() - start), **res})
    print(f"held-out ({args.eval_ids} ids, seed 1000, query cam 0 vs gallery cam 1, chance "
          f"{1.0 / args.eval_ids:.3f}): {res}", flush=True)
    net.eval()
    _save(net, step, args, _reid_meta(res, baseline, curve, size, args, partial=False), layout="state_dict")
    print(f"total {time.time() - t0:.0f} s", flush=True)


def _reid_meta(res, baseline, curve, size, args, partial: bool) -> dict:
    # partial: written at a held-out point, so a run stopped early (wall cap, kill) leaves its last checkpoint
    return {"task": "deploykit.synth.reid_persons", "heldout": {k: v for k, v in res.items() if k not in ("step", "seconds")},
            "heldout_random_weights": baseline, "heldout_protocol": dict(REID_EVAL, num_ids=args.eval_ids),
            "curve": curve, "input_size": list(size), "partial": partial}


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


FAMILIES = {"gait": train_gait, "pose": train_pose, "reid": train_reid}
# threads: 2 for the committed gait proxy (its reproducibility); 1 for the image models, which ran
# 5x faster single-threaded than with 2 OpenMP threads on the shared 2-core machine
DEFAULTS = {"gait": dict(model="gaitset", out="proxies/gaitset-proxy.pt", steps=200, lr=1e-3, threads=2, seqs_per_id=6,
                         minutes=30.0, eval_every=50, train_ids=48, eval_ids=GAIT_EVAL["num_ids"], p=6, k=3),
            "pose": dict(model="hrnet-w32", out="proxies/hrnet-w32-proxy.pth", steps=1200, lr=1e-3, threads=1,
                         minutes=60.0, eval_every=100, eval_ids=64, p=8, k=1, input_size="128x96"),
            "reid": dict(model="rga", out="proxies/rga-proxy.pth", steps=200, lr=3.5e-4, threads=1, train_ids=64,
                         minutes=60.0, eval_every=25, seqs_per_id=8, eval_ids=REID_EVAL["num_ids"], p=4, k=4, input_size="192x96")}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("family", choices=sorted(FAMILIES))
    ap.add_argument("--model", help="registry name (gait: gaitset; pose: hrnet-w32, or fastpose-res50 with --out)")
    ap.add_argument("--out", help="checkpoint path")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--minutes", type=float, help="wall-time cap (default: gait 30, pose/reid 60)")
    ap.add_argument("--lr", type=float)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, help="torch threads (gait 2, pose/reid 1; part of reproducibility)")
    ap.add_argument("--input-size", help="pose/reid: network input HxW (pose default 128x96, reid 192x96)")
    ap.add_argument("--train-ids", type=int, help="training identities (gait 48, reid 64)")
    ap.add_argument("--seqs-per-id", type=int, help="sequences (gait 6) or images (reid 8) per training identity")
    ap.add_argument("--p", type=int, help="identities per batch (gait 6, reid 4; pose: images = p x k, 8)")
    ap.add_argument("--k", type=int, help="samples per identity in a batch (gait 3, reid 4)")
    ap.add_argument("--train-frames", type=int, default=6, help="frames per training clip (default 6)")
    ap.add_argument("--train-views", default="90", help="gait: training views, comma-separated (default 90)")
    ap.add_argument("--eval-ids", type=int, help="held-out identities (gait 24, reid 32) or figures (pose 64)")
    ap.add_argument("--eval-every", type=int, help="pose/reid: held-out metric every N steps (pose 100, reid 25)")
    ap.add_argument("--warmup", type=int, default=20, help="reid: linear learning-rate warm-up steps (default 20)")
    ap.add_argument("--triplet", type=float, default=1.0, help="reid: batch-hard triplet weight (default 1)")
    ap.add_argument("--weight-decay", type=float, default=5e-4, help="reid: Adam's L2 weight decay (default 5e-4)")
    ap.add_argument("--init", choices=("default", "zero-residual"), default="zero-residual",
                    help="reid and FastPose: the start (default zero-residual; 'default' = PyTorch's init for reid, "
                         "HRNet's N(0, 0.001) for FastPose); HRNet always starts as upstream")
    ap.add_argument("--ce", type=float, default=1.0, help="cross-entropy weight (default 1)")
    ap.add_argument("--log-every", type=int, default=10)
    args = ap.parse_args(argv)
    for k, v in DEFAULTS[args.family].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    FAMILIES[args.family](args)


if __name__ == "__main__":
    main()
