"""Benchmark: METER joint (frame + caption) AN extraction on CPU, seconds per TR.

The full-size model (CLIP-ViT-B/16 11 blocks + RoBERTa 12 layers + 6 fusion layers,
318.6M parameters) with random weights records all 47 attention modules through
``extract_joint``: preprocessing of distinct random 720x1024 frames (HCP movie size),
tokenization of a ~12-word caption padded to 50 tokens, the forward pass and the AN
hooks. One TR = one frame + one caption. ``s/TR`` is wall-clock time, ``CPU s/TR`` the
process CPU time (all threads; less sensitive to other jobs on shared cores). Each image size runs in its own subprocess
(peak memory not shared); one batch is run first, outside the timing.

    .venv/bin/python benchmarks/bench_meter.py --trs 16 --image-sizes 288 224 --batch-sizes 1 8
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def measure(image_size: int, batch_sizes: list[int], n_trs: int, threads: int | None) -> list[dict]:
    import numpy as np
    import torch

    from vlm_brain.models.extract import extract_joint
    from vlm_brain.models.meter import MeterAdapter

    if threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    adapter = MeterAdapter(weights="random", seed=0, image_size=image_size, device="cpu")
    build = time.perf_counter() - start
    rng = np.random.default_rng(0)
    words = "a man in a red coat walks his dog across a busy street at night".split()

    def captions(n: int) -> list[str]:
        return [" ".join(rng.permutation(words)[:12]) for _ in range(n)]

    def frames(n: int):
        return (rng.integers(0, 255, (720, 1024, 3), dtype=np.uint8) for _ in range(n))

    results = []
    for batch_size in batch_sizes:
        extract_joint(adapter, frames(batch_size), captions(batch_size), batch_size=batch_size, progress=False)
        start, cpu_start = time.perf_counter(), time.process_time()
        extract_joint(adapter, frames(n_trs), captions(n_trs), batch_size=batch_size, progress=False)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        results.append({"image_size": image_size, "batch_size": batch_size, "trs": n_trs,
                        "seconds": round(seconds, 2), "s_per_tr": round(seconds / n_trs, 3),
                        "cpu_s_per_tr": round(cpu / n_trs, 3),
                        "build_s": round(build, 1)})
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for r in results:
        r["peak_rss_mb"] = round(peak_mb)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trs", type=int, default=16)
    parser.add_argument("--image-sizes", type=int, nargs="+", default=[288, 224])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.batch_sizes, args.trs, args.threads)))
        return
    import torch

    print(f"METER (random weights, 47 attention modules) joint extraction, CPU ({torch.get_num_threads()} threads)")
    print(f"{'px':>4} {'batch':>6} {'TRs':>5} {'seconds':>8} {'s/TR':>7} {'CPU s/TR':>9} {'build s':>8}"
          f" {'peak RSS MB':>12}")
    for image_size in args.image_sizes:
        cmd = [sys.executable, __file__, "--trs", str(args.trs), "--child", str(image_size),
               "--batch-sizes", *map(str, args.batch_sizes)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        for r in json.loads(out):
            print(f"{r['image_size']:>4} {r['batch_size']:>6} {r['trs']:>5} {r['seconds']:>8} {r['s_per_tr']:>7}"
                  f" {r['cpu_s_per_tr']:>9} {r['build_s']:>8} {r['peak_rss_mb']:>12}")


if __name__ == "__main__":
    main()
