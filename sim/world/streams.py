"""Named random streams: one numpy Generator per stable name, derived from the root seed.

A stream's key is a tuple of names (``("household", "aibo4-b03-u1-0502")``); its Generator depends
only on that key and the root seed, so adding a device or a household changes no other stream.
Nothing in pmsim draws from global random state.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["Streams", "stable_key"]


def stable_key(*names: str) -> list[int]:
    """Four 32-bit words from a BLAKE2b digest of the names: stable across runs and platforms."""
    digest = hashlib.blake2b("\x1f".join(names).encode("utf-8"), digest_size=16).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


class Streams:
    """Factory of independent Generators keyed by name under one root seed."""

    __slots__ = ("seed",)

    def __init__(self, seed: int) -> None:
        if seed < 0:
            raise ValueError("seed must be non-negative")
        self.seed = seed

    def get(self, *names: str) -> np.random.Generator:
        return np.random.Generator(
            np.random.PCG64(np.random.SeedSequence([self.seed, *stable_key(*names)]))
        )
