"""Write calibration and labelled held-out silhouettes for the gait proxy (deploykit.synth walkers).

    python scripts/proxy_data.py OUT_DIR [--frames 30]

writes OUT_DIR/calib.npy (32 clips, seed 0: the walkers the proxy was trained on are of this kind)
and OUT_DIR/heldout.npz (`sils` [24, 30, 64, 44] + `labels`: 12 other identities x 2 sequences,
seed 1000, every view), the files `deploykit build-engine --calib-data` and
`deploykit parity --heldout-data` read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from deploykit.synth import walkers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--frames", type=int, default=30)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    calib, _, _, _ = walkers(16, 2, a.frames, seed=0)
    np.save(a.out / "calib.npy", calib)  # [32, s, h, w]: samples without the batch axis
    sils, ids, _, _ = walkers(12, 2, a.frames, seed=1000, first_id=1000)
    np.savez(a.out / "heldout.npz", sils=sils, labels=ids)
    print(f"wrote {a.out / 'calib.npy'} {list(calib.shape)} and {a.out / 'heldout.npz'} {list(sils.shape)}")


if __name__ == "__main__":
    main()
