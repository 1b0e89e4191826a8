"""Time the whole `encode_layer` of one layer against the GEMM floor, in one process.

Synthetic data at HCP scale by default (91,282 grayordinates x 3,655 TRs in 4 runs,
N = 768 ANs) and the conf/hcp encoding settings (k = 64 atoms, SDL max_iter 100, the
13-value alpha grid, refit null of 100 draws x 250 grayordinates, HAC lag 20). The
floor is what the method cannot avoid: X^T Y for the 64 regressors of the 4 folds and
of the full refit, 5 float32 products of 64 x T x G, timed in the same process right
before and after; the ratio is against the faster of the two (a shared machine's load
only ever slows the floor down). Peak memory is the peak resident set size sampled every 20 ms during
`encode_layer`, minus the RSS before it, reported against the BOLD array's size.

    python benchmarks/bench_encoding.py                       # full HCP size, ~1 min here
    python benchmarks/bench_encoding.py --n-targets 8192      # reduced
    python benchmarks/bench_encoding.py --backend torch_cuda  # on a GPU machine
    python benchmarks/bench_encoding.py --repeats 3           # 3 runs, each ratio and their median

It passes only the settings the installed `encode_layer` accepts, so the same script
times an older checkout of the project.
"""

from __future__ import annotations

import argparse
import inspect
import os
import threading
import time
from pathlib import Path

import numpy as np
import yaml
from threadpoolctl import threadpool_info

from vlm_brain.encoding.layer import encode_layer
from vlm_brain.encoding.simulation import ar1
from vlm_brain.encoding.temporal import prepare_regressors, zscore_per_run

GIB = 2**30
HCP_PARAMETERS = Path(__file__).resolve().parents[1] / "conf" / "hcp" / "parameters.yml"


def hcp_encoding() -> dict:
    """The encoding parameters of the real study, read from conf/hcp (one home for them)."""
    return yaml.safe_load(HCP_PARAMETERS.read_text())["encoding"]


def hcp_alphas() -> np.ndarray:
    """The ridge grid of the real study (conf/hcp)."""
    return np.asarray(hcp_encoding()["alphas"], dtype=float)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-targets", type=int, default=91_282)
    parser.add_argument("--n-samples", type=int, default=3_655)
    parser.add_argument("--n-runs", type=int, default=4)
    parser.add_argument("--n-atoms", type=int, default=64)
    parser.add_argument("--n-ans", type=int, default=768)
    parser.add_argument("--sdl-max-iter", type=int, default=100)
    parser.add_argument("--backend", default="numpy", help="numpy, torch or torch_cuda")
    parser.add_argument("--target-batch-size", type=int, default=hcp_encoding()["target_batch_size"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1, help="encode_layer runs, each against the floor around it")
    return parser.parse_args()


def synthetic_layer(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ANs (T, N) with planted sparse atoms, BOLD (T, G) float32 z-scored per run, run labels (T,)."""
    rng = np.random.default_rng(args.seed)
    runs = np.repeat(np.arange(args.n_runs), -(-args.n_samples // args.n_runs))[: args.n_samples]
    atoms = ar1(args.n_samples, args.n_atoms, 0.5, rng, runs)
    loadings = rng.standard_normal((args.n_atoms, args.n_ans)) * (rng.random((args.n_atoms, args.n_ans)) < 0.05)
    ans = (atoms @ loadings + 0.3 * rng.standard_normal((args.n_samples, args.n_ans))).astype(np.float32)
    atoms_bold, _ = prepare_regressors(atoms, runs, np.ones(args.n_samples, dtype=bool), tr=1.0)
    y = np.empty((args.n_samples, args.n_targets), dtype=np.float32)
    for start in range(0, args.n_targets, 4096):
        cols = slice(start, min(start + 4096, args.n_targets))
        weights = rng.standard_normal((args.n_atoms, cols.stop - start)) / np.sqrt(args.n_atoms)
        weights *= rng.random(cols.stop - start) < 0.3  # 30 % driven grayordinates
        noise = rng.standard_normal((args.n_samples, cols.stop - start), dtype=np.float32)
        y[:, cols] = zscore_per_run(0.3 * atoms_bold @ weights + noise, runs)
    return ans, y, runs


def current_rss() -> int:
    """Resident set size of this process in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def gemm_floor(y: np.ndarray, n_atoms: int, n_products: int = 5, repeats: int = 3) -> float:
    """Fastest of ``repeats`` timings of ``n_products`` float32 products (k, T) @ (T, G)."""
    x = np.random.default_rng(1).standard_normal((n_atoms, y.shape[0])).astype(np.float32)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n_products):
            x @ y
        best = min(best, time.perf_counter() - start)
    return best


def timed_with_peak(fn, interval: float = 0.02):
    """(result, seconds, peak RSS increase in bytes) of fn()."""
    baseline = current_rss()
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(interval):
            peak[0] = max(peak[0], current_rss())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        result = fn()
    finally:
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    return result, seconds, max(peak[0], current_rss()) - baseline


def main() -> None:
    args = parse_args()
    threads = {info["internal_api"]: info["num_threads"] for info in threadpool_info()}
    print(f"T={args.n_samples} ({args.n_runs} runs), G={args.n_targets}, N={args.n_ans}, k={args.n_atoms}, "
          f"SDL max_iter={args.sdl_max_iter}, backend={args.backend}, threads={threads}", flush=True)
    ans, y, runs = synthetic_layer(args)
    settings = dict(n_atoms=args.n_atoms, sdl_alpha=1.0, sdl_max_iter=args.sdl_max_iter,
                    alphas=hcp_alphas(), q=0.05, seed=args.seed, backend=args.backend,
                    target_batch_size=args.target_batch_size, null_method="refit", n_refit=100,
                    refit_targets=250, n_null=1000, max_lag=20)
    accepted = inspect.signature(encode_layer).parameters
    if "changes" in accepted:  # settings as one EncodingSettings (its fields are the keyword overrides)
        from dataclasses import fields

        from vlm_brain.encoding.settings import EncodingSettings
        accepted = {f.name for f in fields(EncodingSettings)}
    settings = {key: value for key, value in settings.items() if key in accepted}
    keep = np.ones(len(runs), dtype=bool)
    # warm-up on a slice (compiles the numba kernels) so that the timing is the steady state
    encode_layer(ans, y[:, :3000], runs, keep, 1.0, **{**settings, "sdl_max_iter": 2})
    floor = gemm_floor(y, args.n_atoms)
    ratios, bold = [], y.nbytes
    for repeat in range(args.repeats):  # each run between two floor measurements
        out, seconds, peak = timed_with_peak(lambda: encode_layer(ans, y, runs, keep, 1.0, **settings))
        floor_after = gemm_floor(y, args.n_atoms)
        print(f"\nGEMM floor (5 x {args.n_atoms} x {args.n_samples} x {args.n_targets}, float32): "
              f"{floor:.2f} s before, {floor_after:.2f} s after")
        best = min(floor, floor_after)  # the floor is the fastest the machine managed around this run
        ratios.append(seconds / best)
        print(f"encode_layer: {seconds:.1f} s = {seconds / best:.1f} x the floor ({best:.2f} s)")
        print(f"peak memory during encode_layer: +{peak / GIB:.2f} GiB = {peak / bold:.2f} x the BOLD array "
              f"({bold / GIB:.2f} GiB)")
        floor = floor_after
    if args.repeats > 1:
        print(f"\nratio to the floor over {args.repeats} runs: median {np.median(ratios):.2f}, "
              f"range {min(ratios):.2f}-{max(ratios):.2f}")
    print(f"BNs: {out['bn'].mean():.1%} of grayordinates; min p {out['p'].min():.2e}; "
          f"median r {np.median(out['r']):.3f}")


if __name__ == "__main__":
    main()
