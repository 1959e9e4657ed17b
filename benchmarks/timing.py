"""Shared by the benchmark scripts: the best wall time of repeated calls."""

import time


def best_time(fn, repeats: int) -> float:
    """The fastest of `repeats` calls of `fn`, in seconds (the least disturbed by other jobs)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
