"""Time the encoding of one layer: SDL + leave-one-run-out RidgeCV + circular-shift null.

Synthetic data at HCP scale by default (91,282 grayordinates x 3,655 TRs in 4 runs,
N = 768 ANs, k = 64 atoms). The ridge step is timed twice on the same per-fold atom
regressors: himalaya ``RidgeCV`` (inner leave-one-run-out CV, as the library uses it)
and scikit-learn ``RidgeCV(alpha_per_target=True)`` (efficient leave-one-out GCV, its
only mode with an alpha per target). Peak memory per stage is the peak resident set
size sampled every 20 ms during the stage, minus the RSS when it started (tracemalloc
slows scikit-learn's dictionary learning ~12x, so it is not used); the process max RSS
(getrusage) is reported too.

    python benchmarks/bench_encoding.py --n-targets 2048          # reduced, ~2 min
    python benchmarks/bench_encoding.py                           # full HCP size
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
from sklearn.linear_model import RidgeCV as SklearnRidgeCV
from threadpoolctl import threadpool_info, threadpool_limits

from vlm_brain.encoding._validation import pearson_r
from vlm_brain.encoding.ridge import (
    DEFAULT_ALPHAS,
    cross_validate_encoding,
    leave_one_run_out,
    sdl_regressors,
)
from vlm_brain.encoding.significance import circular_shift_test
from vlm_brain.encoding.simulation import ar1
from vlm_brain.encoding.temporal import prepare_regressors, zscore_per_run

GIB = 2**30


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-targets", type=int, default=91_282)
    parser.add_argument("--n-samples", type=int, default=3_655)
    parser.add_argument("--n-runs", type=int, default=4)
    parser.add_argument("--n-atoms", type=int, default=64)
    parser.add_argument("--n-ans", type=int, default=768)
    parser.add_argument("--n-null", type=int, default=1000)
    parser.add_argument("--backend", default="numpy", help="numpy, torch or torch_cuda")
    parser.add_argument("--target-batch-size", type=int, default=4096)
    parser.add_argument("--blas-threads", type=int, default=None, help="default: all")
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def synthetic_layer(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prepared ANs (T, N), BOLD (T, G) float32 z-scored per run, run labels (T,)."""
    rng = np.random.default_rng(args.seed)
    runs = np.repeat(np.arange(args.n_runs), -(-args.n_samples // args.n_runs))[: args.n_samples]
    atoms = ar1(args.n_samples, args.n_atoms, 0.5, rng, runs)
    loadings = rng.standard_normal((args.n_atoms, args.n_ans)) * (
        rng.random((args.n_atoms, args.n_ans)) < 0.05
    )
    features = atoms @ loadings + 0.3 * rng.standard_normal((args.n_samples, args.n_ans))
    keep = np.ones(args.n_samples, dtype=bool)
    x, _ = prepare_regressors(features, runs, keep, tr=1.0)
    atoms_bold, _ = prepare_regressors(atoms, runs, keep, tr=1.0)
    y = np.empty((args.n_samples, args.n_targets), dtype=np.float32)
    for start in range(0, args.n_targets, 4096):
        cols = slice(start, min(start + 4096, args.n_targets))
        weights = rng.standard_normal((args.n_atoms, cols.stop - start)) / np.sqrt(args.n_atoms)
        noise = rng.standard_normal((args.n_samples, cols.stop - start), dtype=np.float32)
        y[:, cols] = zscore_per_run(0.5 * atoms_bold @ weights + noise, runs)
    return x, y, runs


def current_rss() -> int:
    """Resident set size of this process in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def measured(name: str, table: list[tuple[str, float, float]], interval: float = 0.02):
    """Append (stage, seconds, peak RSS increase in GiB during the stage)."""
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
        yield
    finally:
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
        increase = (max(peak[0], current_rss()) - baseline) / GIB
        table.append((name, seconds, increase))
        print(f"  {name}: {seconds:.1f} s, peak +{increase:.2f} GiB", flush=True)


def sklearn_cross_validate(
    regressors: list[tuple[np.ndarray, np.ndarray]], y: np.ndarray, runs: np.ndarray,
    batch_size: int,
) -> np.ndarray:
    """Leave-one-run-out predictions with scikit-learn RidgeCV, one alpha per target."""
    predictions = np.zeros(y.shape, dtype=np.float32)
    for (train, test), (r_train, r_test) in zip(leave_one_run_out(runs), regressors, strict=True):
        for start in range(0, y.shape[1], batch_size):
            cols = slice(start, start + batch_size)
            model = SklearnRidgeCV(alphas=DEFAULT_ALPHAS, fit_intercept=False,
                                   alpha_per_target=True)
            model.fit(r_train, y[train, cols])
            predictions[test, cols] = model.predict(r_test)
    return predictions


def replay(cached: list[tuple[np.ndarray, np.ndarray]]) -> Callable:
    """A regressor factory that hands out precomputed per-fold regressors in order."""
    folds = iter(cached)
    return lambda x_train, x_test, runs_train: next(folds)


def main() -> None:
    args = parse_args()
    limits = threadpool_limits(args.blas_threads) if args.blas_threads else None
    threads = {info["internal_api"]: info["num_threads"] for info in threadpool_info()}
    print(f"T={args.n_samples} ({args.n_runs} runs), G={args.n_targets}, N={args.n_ans}, "
          f"k={args.n_atoms}, nulls={args.n_null}, backend={args.backend}, threads={threads}")
    table: list[tuple[str, float, float]] = []

    with measured("synthetic data", table):
        x, y, runs = synthetic_layer(args)

    make_atoms = sdl_regressors(n_atoms=args.n_atoms, alpha=1.0, seed=args.seed)
    with measured(f"SDL x{args.n_runs} folds", table):
        cached = [make_atoms(x[train], x[test], runs[train])
                  for train, test in leave_one_run_out(runs)]

    with measured("himalaya RidgeCV (LORO)", table):
        result = cross_validate_encoding(x, y, runs, replay(cached), backend=args.backend,
                                         target_batch_size=args.target_batch_size)

    with measured(f"circular-shift null x{args.n_null}", table):
        test = circular_shift_test(result.predictions, y, runs, n_null=args.n_null,
                                   target_batch_size=args.target_batch_size)

    sklearn_r = None
    if not args.skip_sklearn:
        with measured("sklearn RidgeCV (GCV)", table):
            sklearn_r = pearson_r(sklearn_cross_validate(cached, y, runs,
                                                         args.target_batch_size), y)

    print(f"\n{'stage':<32}{'seconds':>10}{'+GiB peak':>10}")
    for name, seconds, peak in table:
        print(f"{name:<32}{seconds:>10.1f}{peak:>10.2f}")
    print(f"{'process max RSS':<32}{'':>10}"
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:>10.2f}")
    print(f"\nhimalaya: median r {np.median(result.r):.3f}, "
          f"BNs (q=0.05) {test.significant.mean():.1%}")
    if sklearn_r is not None:
        print(f"sklearn:  median r {np.median(sklearn_r):.3f}, "
              f"|r_himalaya - r_sklearn| max {np.max(np.abs(result.r - sklearn_r)):.3f}")
    if limits is not None:
        limits.restore_original_limits()


if __name__ == "__main__":
    main()
