"""Benchmark: CLIP (ViT-B-32) image AN extraction on CPU at several batch sizes.

Reports frames/s and the peak resident memory of a process that extracts all 12
layers' ANs from ``--frames`` distinct random 720x1024 frames (HCP movie size).
Each batch size runs in its own subprocess so peak memory is not shared.

    .venv/bin/python benchmarks/bench_clip_extraction.py --frames 96 --batch-sizes 1 8 32
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def measure(n_frames: int, batch_size: int, threads: int | None) -> dict:
    import numpy as np
    import torch

    from vlm_brain.models.clip import ClipAdapter
    from vlm_brain.models.extract import extract_images

    if threads:
        torch.set_num_threads(threads)
    adapter = ClipAdapter(device="cpu")
    rng = np.random.default_rng(0)
    frames = (rng.integers(0, 255, (720, 1024, 3), dtype=np.uint8) for _ in range(n_frames))
    # warm-up batch (first-call allocations) outside the timing
    extract_images(adapter, "image", (rng.integers(0, 255, (720, 1024, 3), dtype=np.uint8) for _ in range(batch_size)),
                   batch_size, batch_size=batch_size, progress=False)
    start = time.perf_counter()
    extract_images(adapter, "image", frames, n_frames, batch_size=batch_size, progress=False)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"batch_size": batch_size, "frames": n_frames, "seconds": round(seconds, 2),
            "frames_per_s": round(n_frames / seconds, 2), "peak_rss_mb": round(peak_mb)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.frames, args.child, args.threads)))
        return
    import torch

    print(f"CLIP ViT-B-32 image stream, 12 layers, CPU ({torch.get_num_threads()} threads), random weights")
    print(f"{'batch':>6} {'frames':>7} {'seconds':>8} {'frames/s':>9} {'peak RSS MB':>12}")
    for batch_size in args.batch_sizes:
        cmd = [sys.executable, __file__, "--frames", str(args.frames), "--child", str(batch_size)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        print(f"{r['batch_size']:>6} {r['frames']:>7} {r['seconds']:>8} {r['frames_per_s']:>9} {r['peak_rss_mb']:>12}")


if __name__ == "__main__":
    main()
