"""Argument checks shared by the synthetic generator and the data set loaders.

Part of :mod:`leukfeat.datasets`.
"""

from __future__ import annotations

import numbers

import numpy as np



def root_seed(random_state) -> np.random.SeedSequence:
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state: must be non-negative, got {random_state}")
        return np.random.SeedSequence(int(random_state))
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(random_state.integers(0, 2**32, size=4).tolist())
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(random_state.randint(0, 2**32, size=4,
                                                           dtype=np.uint64).tolist())
    raise ValueError("random_state: expected None, an int, a numpy Generator or "
                     f"SeedSequence, got {type(random_state).__name__}")
