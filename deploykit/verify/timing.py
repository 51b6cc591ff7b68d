"""Interleaved timing of several runners on the same inputs (bench and `--backend auto` on a CPU).

Apart from `bench.py` so the engine build's CPU measuring (build/auto_cpu.py) needs nothing that
builds engines itself (bench does, for model-name targets): no import circle through build.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

Runner = Callable[[dict], object]


def time_interleaved(runners: dict[str, Runner], feeds: dict, *, rounds: int, iters: Optional[int] = None,
                     duration: Optional[float] = None, progress: Optional[Callable[[str], None]] = None,
                     ) -> dict[str, list[float]]:
    """Latencies in ms of each runner on `feeds`, interleaved over `rounds` rounds.

    Each round times every runner either `iters` times or for `duration / rounds` seconds (at least
    once). Interleaving spreads the drift of a shared machine over all runners, so their ratios
    stay fair. Warm the runners up before calling this. The wall time of each runner's timed calls
    is in `time_interleaved.last_wall_s` (a dict) after the call.
    """
    if (iters is None) == (duration is None):
        raise ValueError("time_interleaved: give exactly one of iters= or duration=")
    lat: dict[str, list[float]] = {k: [] for k in runners}
    wall = {k: 0.0 for k in runners}
    slice_s = None if duration is None else duration / rounds
    for r in range(rounds):
        if progress:
            progress(f"round {r + 1}/{rounds}")
        for k, run in runners.items():
            start = time.perf_counter()
            n = 0
            while (n < iters) if iters is not None else (n == 0 or time.perf_counter() - start < slice_s):
                t0 = time.perf_counter()
                run(feeds)
                lat[k].append((time.perf_counter() - t0) * 1000.0)
                n += 1
            wall[k] += time.perf_counter() - start
    time_interleaved.last_wall_s = wall
    return lat
