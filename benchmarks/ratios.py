"""Ratios of paired rounds: their spread, and how sure their median is.

Each round of a comparison measures every app once, so each round gives one
ratio per app; ``measure.py`` reports the median of those ratios.
"""

import math
import statistics


def paired(values: list[float], baseline: list[float]) -> dict[str, float]:
    """The spread of per-round ratios (rounds where the baseline measured nothing left out)."""
    ratios = [a / b for a, b in zip(values, baseline, strict=True) if b]
    return spread(ratios or [float("nan")])


def spread(values: list[float]) -> dict[str, float]:
    """Median, quartiles and extremes of per-round ratios, and the median's
    confidence interval (``low``, ``high``: see ``median_interval``)."""
    low, high, confidence = median_interval(values)
    if len(values) == 1:
        q1 = median = q3 = values[0]
    else:
        q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {
        "median": median,
        "q1": q1,
        "q3": q3,
        "min": min(values),
        "max": max(values),
        "low": low,
        "high": high,
        "confidence": confidence,
    }


def median_interval(values: list[float], wanted: float = 0.95) -> tuple[float, float, float]:
    """A confidence interval of the median that assumes no distribution: the k-th
    smallest and the k-th largest value, with the largest k for which the median
    lies between them at least ``wanted`` of the time (how many values fall below
    the median is binomial(n, 1/2)). Returns (low, high, the actual confidence);
    with too few values for ``wanted``, the extremes and their lower confidence.

    The interquartile range says how much single rounds vary; this says how far
    the median itself may be off, which is what decides a target such as 1.03.
    """
    ordered = sorted(values)
    n = len(ordered)

    def confidence(k: int) -> float:  # of [k-th smallest, k-th largest]
        below = sum(math.comb(n, i) for i in range(k)) / 2**n  # P(fewer than k below)
        return 1 - 2 * below

    k = 1
    while k + 1 <= (n + 1) // 2 and confidence(k + 1) >= wanted:
        k += 1
    return ordered[k - 1], ordered[n - k], confidence(k)


def verdict(value: float, target: float) -> str:
    """Whether one figure (a median) is under ``target``."""
    return f"≤ {target:.2f}: {'yes' if value <= target else 'NO'}"


def decided(r: dict[str, float], target: float, wanted: float = 0.95) -> str:
    """Whether the median ratio is under ``target``, judged by its confidence
    interval: undecided while the interval reaches across the target. With too
    few rounds for an interval (the memory runs), the median alone, saying so."""
    if r["confidence"] < wanted:
        return f"{verdict(r['median'], target)} (median only: too few rounds)"
    if r["high"] <= target:
        answer = "yes"
    elif r["low"] > target:
        answer = "NO"
    else:
        answer = "undecided"
    return f"≤ {target:.2f}: {answer}"


def interval(r: dict[str, float]) -> str:
    return f"{r['low']:.3f}-{r['high']:.3f} ({r['confidence']:.0%})"
