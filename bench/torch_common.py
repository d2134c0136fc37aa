"""Shared by the PyTorch sides of the benchmarks (bench/torch_*.py)."""
import time


def timed(fn, min_time, min_iters, best=False):
    """Median seconds of fn over at least min_iters runs and min_time seconds, after one warm-up run
    (or the fastest run: the BLAS check on a shared CPU)."""
    fn()  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[0] if best else times[len(times) // 2]
