"""Small random draws shared by the simulator (all from an explicit `random.Random`)."""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Sequence


def weighted(items: Sequence[tuple], weight_index: int = -1) -> tuple[list, list[float]]:
    """Split (value..., weight) rows into rows and a cumulative weight list for bisect."""
    total = 0.0
    cumulative = []
    for item in items:
        total += item[weight_index]
        cumulative.append(total)
    return list(items), cumulative


def pick(rng: random.Random, rows: list, cumulative: list[float]) -> tuple:
    """A row drawn by weight, from a table made by `weighted`."""
    return rows[bisect_right(cumulative, rng.random() * cumulative[-1])]


def poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method: exact and fast for the small rates used here (< 10)."""
    if lam <= 0:
        return 0
    limit = math.exp(-lam)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def lognormal_ms(rng: random.Random, median: float, sigma: float, unit_ms: int) -> int:
    """A lognormal duration with the given median (in `unit_ms` units), in milliseconds."""
    return int(rng.lognormvariate(math.log(median), sigma) * unit_ms)
