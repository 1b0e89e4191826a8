"""Time per (subject, layer) encoding task on Dask, and what the whole HCP cohort would take.

Synthetic subjects at HCP scale by default (91,282 grayordinates x 3,655 TRs in 4 runs,
N = 768 ANs, the conf/hcp encoding settings), written as .npy files and passed to the
tasks by path, as the pipeline does. The tasks run through the project's
`run_tasks` (a LocalCluster of single-threaded workers, or in this process); the
script prints each task's own time, the wall time of all of them, and the projection
for 184 subjects x 95 layer-streams at the measured throughput.

    python benchmarks/bench_cohort.py                                    # 2 subjects x 2 layers, ~2 min here
    python benchmarks/bench_cohort.py --n-targets 8192                   # reduced
    python benchmarks/bench_cohort.py --scheduler none --backend torch_cuda   # on a GPU machine
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from bench_encoding import hcp_alphas  # noqa: I001 (this folder, as the script runs from it)

from vlm_brain.cohort.execution import run_tasks
from vlm_brain.cohort.tasks import array_ref, make_task, run_encoding_task
from vlm_brain.encoding.settings import EncodingSettings

COHORT = {"subjects": 184, "layers": 95}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-subjects", type=int, default=2)
    parser.add_argument("--n-layers", type=int, default=2)
    parser.add_argument("--n-targets", type=int, default=91_282)
    parser.add_argument("--n-samples", type=int, default=3_655)
    parser.add_argument("--n-ans", type=int, default=768)
    parser.add_argument("--scheduler", default="local", help="local, none, or a scheduler address")
    parser.add_argument("--n-workers", type=int, default=None, help="local cluster workers (default: one per core)")
    parser.add_argument("--backend", default="numpy")
    return parser.parse_args()


def write_subjects(folder: Path, args: argparse.Namespace) -> tuple[list, list, np.ndarray]:
    """Memory-mapped BOLD per subject (T, G) and ANs per layer (T, N), float32, z-scored."""
    rng = np.random.default_rng(0)
    sources = rng.standard_normal((args.n_samples, 32)).astype(np.float32)
    bolds, ans = [], []
    for s in range(args.n_subjects):
        path = folder / f"bold_{s}.npy"
        bold = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(args.n_samples, args.n_targets))
        for start in range(0, args.n_targets, 8192):
            cols = slice(start, min(start + 8192, args.n_targets))
            block = 0.3 * sources @ rng.standard_normal((32, cols.stop - start)).astype(np.float32)
            block += rng.standard_normal(block.shape, dtype=np.float32)
            bold[:, cols] = (block - block.mean(0)) / block.std(0)
        bold.flush()
        del bold
        bolds.append(np.load(path, mmap_mode="r"))
    for layer in range(args.n_layers):
        path = folder / f"ans_{layer}.npy"
        x = sources @ rng.standard_normal((32, args.n_ans)) + 0.3 * rng.standard_normal((args.n_samples, args.n_ans))
        np.save(path, x.astype(np.float32))
        ans.append(np.load(path, mmap_mode="r"))
    runs = np.repeat(np.arange(4), -(-args.n_samples // 4))[: args.n_samples]
    return bolds, ans, runs


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = EncodingSettings(n_atoms=64, sdl_alpha=1.0, sdl_max_iter=100, alphas=hcp_alphas(), q=0.05,
                                max_lag=20, seed=0, backend=args.backend, target_batch_size=4096,
                                null_method="refit", n_refit=100, refit_targets=250)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        bolds, ans, runs = write_subjects(folder, args)
        print(f"wrote {args.n_subjects} subjects ({args.n_samples} TRs x {args.n_targets} grayordinates, "
              f"{bolds[0].nbytes / 2**30:.2f} GiB each) and {args.n_layers} layers in {time.perf_counter() - t0:.0f} s")
        tasks = [make_task(f"sub{s}", f"bench.image.L{layer:02d}", array_ref(ans[layer]), array_ref(bolds[s]), {})
                 for s in range(args.n_subjects) for layer in range(args.n_layers)]
        work = partial(run_encoding_task, runs=runs, keep=np.ones(len(runs), dtype=bool), tr=1.0, settings=settings,
                       cache_root=str(folder / "results"))
        start = time.perf_counter()
        reports = run_tasks(work, tasks, scheduler=args.scheduler, n_workers=args.n_workers, describe=lambda t: t.name)
        wall = time.perf_counter() - start
    per_task = np.array([r.seconds for r in reports])
    workers = sorted({r.worker for r in reports})
    throughput = len(tasks) / wall  # tasks per second, start-up of the cluster included
    total = COHORT["subjects"] * COHORT["layers"]
    print(f"scheduler={args.scheduler}, {len(workers)} worker(s), backend={args.backend}")
    print(f"per (subject, layer) task: mean {per_task.mean():.1f} s, min {per_task.min():.1f} s, "
          f"max {per_task.max():.1f} s (each on one thread)")
    print(f"{len(tasks)} tasks in {wall:.1f} s wall = {wall / len(tasks):.1f} s per task on this machine")
    print(f"projection: {COHORT['subjects']} subjects x {COHORT['layers']} layers = {total} tasks -> "
          f"{total / throughput / 3600:.1f} h here; per worker-core {per_task.mean() * total / 3600:.0f} core-hours")


if __name__ == "__main__":
    main()
