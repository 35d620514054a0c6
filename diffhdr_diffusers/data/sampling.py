"""Seeded data order for training: which scene, and which crop of it, every sample of the stream is.

Everything is derived from ``(seed, stream position)`` through :func:`derive_seed`, never from global
RNG state, the worker count or the order workers run, so a resumed run sees exactly the samples
the uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


def derive_seed(*keys: int) -> int:
    """A 63-bit seed that depends on every key (via ``numpy.random.SeedSequence``), not on their sum."""
    state = np.random.SeedSequence([int(key) for key in keys]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


class StreamBatchSampler(torch.utils.data.Sampler):
    """This rank's batches of an endless, seeded stream of scene indices, starting at a given batch.

    The stream concatenates one permutation of ``range(num_scenes)`` per epoch (epoch ``e`` shuffled
    with ``derive_seed(seed, 2, e)``). Global batch ``g`` is stream positions
    ``[g * batch_size * world_size, (g + 1) * batch_size * world_size)``; rank ``r`` takes its slice of
    ``batch_size``. Each yielded item is a ``(scene_index, position)`` pair, so the dataset can seed
    the crop from the position. Nothing depends on worker count, so resuming at ``start_batch`` is exact.
    """

    def __init__(self, num_scenes: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 start_batch: int = 0):
        self.num_scenes, self.batch_size, self.seed = num_scenes, batch_size, seed
        self.rank, self.world_size, self.start_batch = rank, world_size, start_batch
        self._permutations: dict[int, list[int]] = {}

    def scene_at(self, position: int) -> int:
        epoch, offset = divmod(position, self.num_scenes)
        if epoch not in self._permutations:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, 2, epoch))
            self._permutations = {epoch: torch.randperm(self.num_scenes, generator=generator).tolist()}
        return self._permutations[epoch][offset]

    def batch(self, global_batch: int) -> list[tuple[int, int]]:
        start = (global_batch * self.world_size + self.rank) * self.batch_size
        return [(self.scene_at(position), position) for position in range(start, start + self.batch_size)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        global_batch = self.start_batch
        while True:
            yield self.batch(global_batch)
            global_batch += 1


def crop_seed(seed: int, position: int) -> int:
    """The seed of the random crop and augmentation of the sample at stream ``position``."""
    return derive_seed(seed, 3, position) % (2**32)
