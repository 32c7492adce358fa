"""The one canonical split: grouped by DOI (a report's easy and difficult items never straddle), 80/20, seed 2025."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

SEED = 2025
TEST_SIZE = 0.2
SPLIT_INFO = {"grouped_by": "doi", "test_size": TEST_SIZE, "seed": SEED, "method": "sorted DOIs, numpy permutation"}


def canonical_split(dois: Iterable[str], seed: int = SEED, test_size: float = TEST_SIZE) -> dict[str, str]:
    """Map each DOI to 'train' or 'test'. Deterministic given the set of DOIs, the seed and the size."""
    unique = sorted(set(dois))
    if not unique:
        return {}
    n_test = int(round(test_size * len(unique)))
    if len(unique) > 1:
        n_test = min(max(n_test, 1), len(unique) - 1)
    order = np.random.default_rng(seed).permutation(len(unique))
    test = {unique[i] for i in order[:n_test]}
    return {d: ("test" if d in test else "train") for d in unique}


def grouped_folds(dois: Iterable[str], k: int = 5, seed: int = SEED) -> dict[str, int]:
    """Map each DOI to a fold 0..k-1 (seeded, grouped by DOI), for cross-validation."""
    unique = sorted(set(dois))
    order = np.random.default_rng(seed).permutation(len(unique))
    return {unique[i]: pos % k for pos, i in enumerate(order)}
