"""sampler: the length-grouped, no-duplicates batch sampler training uses (``train.length_aware``)."""

from __future__ import annotations

import numpy as np
import torch
from sentence_transformers.base.sampler import NoDuplicatesBatchSampler


class LengthGroupedNoDuplicatesBatchSampler(NoDuplicatesBatchSampler):
    """No duplicate texts in a batch (in-batch negatives stay true negatives), and texts of similar
    length together: shuffle, cut into mega-batches of 16 batches, sort each by length, then shuffle
    the batches. Less padding, so fewer wasted FLOPs per pair."""

    MEGA = 16

    def _iter_one_pass(self, get_sample_values, has_overlap):
        if not hasattr(self, "_lengths"):
            columns = [c for c in self.dataset.column_names if c in ("anchor", "positive")]
            self._lengths = np.sum([[len(t) for t in self.dataset[c]] for c in columns], axis=0)
        order = torch.randperm(len(self.dataset), generator=self.generator).numpy()
        mega = self.batch_size * self.MEGA
        for start in range(0, len(order), mega):
            block = sorted(order[start : start + mega].tolist(), key=lambda i: self._lengths[i])
            batches, pending = [], []
            batch, values = [], set()
            for index in block:
                for candidate in [*pending, index]:
                    sample = get_sample_values(candidate)
                    if has_overlap(sample, values):
                        if candidate not in pending:
                            pending.append(candidate)  # a duplicate waits for the next batch
                        continue
                    if candidate in pending:
                        pending.remove(candidate)
                    batch.append(candidate)
                    values |= set(sample)
                    if len(batch) == self.batch_size:
                        batches.append(batch)
                        batch, values = [], set()
            if batch and not self.drop_last:
                batches.append(batch)
            for i in torch.randperm(len(batches), generator=self.generator).tolist():
                yield batches[i]
