"""Deterministic, resumable batch order for one or many processes, with PoseSOR's multi-size batches.

The training stream is an endless concatenation of epochs; epoch ``e`` is the permutation
``numpy.random.default_rng([seed, e]).permutation(N)``. Micro-batch ``b`` of the whole job covers the
stream positions ``[b * W * B, (b + 1) * W * B)`` (``W`` processes, ``B`` images per process); process
``r`` takes the ``r``-th block of ``B``. Everything about a batch is a pure function of ``(seed, b)``:

* which images (above), so resuming at iteration ``i`` starts at ``b = i * grad_accumulation`` without
  replaying anything, and the order does not depend on the number of data-loading workers;
* its size: one of ``dynamic_sizes`` drawn from ``default_rng([seed, 1, b])``, the same on every process
  (PoseSOR picks one size per batch);
* a per-image augmentation seed (the flip coin) from ``SeedSequence([seed, 2, b, r, j])``.

So N steps straight and N/2 + resume + N/2 see exactly the same images, sizes and flips.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["SampleKey", "TrainBatchSampler", "shard_indices"]


@dataclass(frozen=True)
class SampleKey:
    """What the dataset needs to produce one training sample."""

    index: int
    size: int | None
    """Square size of the batch (dynamic sizes), or ``None`` for the dataset's own size."""
    seed: int
    """Augmentation seed of this sample."""


class TrainBatchSampler:
    """Endless per-process batches of :class:`SampleKey` (see the module docstring).

    Args:
        dataset_size: number of training images ``N``.
        batch_size: images per process and micro-batch ``B``.
        seed: the run's seed.
        rank, world_size: this process and the number of processes ``W``.
        dynamic_sizes: square sizes to draw one per batch from; empty = the dataset's size.
        start_batch: the first micro-batch ``b`` to produce (resume).
    """

    def __init__(
        self,
        dataset_size: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        dynamic_sizes: Sequence[int] = (),
        start_batch: int = 0,
    ) -> None:
        if dataset_size < 1:
            raise ValueError("the training set is empty")
        self.n = int(dataset_size)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.dynamic_sizes = tuple(int(s) for s in dynamic_sizes)
        self.start_batch = int(start_batch)
        self._epoch = -1
        self._perm = np.zeros(0, np.int64)

    def permutation(self, epoch: int) -> np.ndarray:
        """The image order of ``epoch``."""
        if epoch != self._epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            self._epoch = epoch
        return self._perm

    def batch_size_of(self, b: int) -> int | None:
        """The square size of micro-batch ``b`` (``None`` without dynamic sizes)."""
        if not self.dynamic_sizes:
            return None
        return int(self.dynamic_sizes[np.random.default_rng([self.seed, 1, b]).integers(len(self.dynamic_sizes))])

    def batch(self, b: int) -> list[SampleKey]:
        """This process's share of micro-batch ``b``."""
        size = self.batch_size_of(b)
        first = (b * self.world_size + self.rank) * self.batch_size
        keys = []
        for j in range(self.batch_size):
            pos = first + j
            epoch, offset = divmod(pos, self.n)
            index = int(self.permutation(epoch)[offset])
            seed = int(np.random.SeedSequence([self.seed, 2, b, self.rank, j]).generate_state(1)[0])
            keys.append(SampleKey(index, size, seed))
        return keys

    def __iter__(self) -> Iterator[list[SampleKey]]:
        b = self.start_batch
        while True:
            yield self.batch(b)
            b += 1

    def epoch_of(self, b: int) -> float:
        """Epochs completed at the start of micro-batch ``b`` (for logs)."""
        return b * self.world_size * self.batch_size / self.n


def shard_indices(n: int, rank: int, world_size: int) -> list[int]:
    """Indices ``rank, rank + W, ...`` of ``n`` items: the evaluation share of one process."""
    return list(range(rank, n, world_size))
