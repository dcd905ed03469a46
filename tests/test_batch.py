"""Collate shapes and the length-bucketing sampler."""
import numpy as np
import torch

from zoo.data.batch import BucketBatchSampler, collate


def item(i, n, text=True):
    d = {"id": f"u{i}", "label": i % 3, "audio": torch.ones(n) * (i + 1)}
    if text:
        d["text"] = f"t{i}"
    return d


def test_collate_pads_and_keeps_lengths():
    b = collate([item(0, 5), item(1, 3), None, item(2, 8)])
    assert b.waveforms.shape == (3, 8) and b.lengths.tolist() == [5, 3, 8]
    assert b.waveforms[1, 3:].abs().sum() == 0 and b.waveforms[1, :3].eq(2).all()
    assert b.labels.tolist() == [0, 1, 2] and b.texts == ["t0", "t1", "t2"] and b.ids == ["u0", "u1", "u2"]
    assert b.soft is None and collate([None, None]) is None


def test_collate_soft_labels_and_text_only():
    items = [{"id": "a", "label": 1, "soft": torch.tensor([0.2, 0.8]), "text": "x"},
             {"id": "b", "label": 0, "soft": torch.tensor([1.0, 0.0]), "text": "y"}]
    b = collate(items)
    assert b.waveforms is None and b.soft.shape == (2, 2) and torch.allclose(b.soft.sum(1), torch.ones(2))


def test_bucketing_covers_all_and_reduces_padding():
    rng = np.random.default_rng(0)
    durations = rng.uniform(1, 10, size=500)
    s = BucketBatchSampler(durations, batch_size=16, shuffle=True, seed=0)
    batches = list(s)
    assert sorted(i for b in batches for i in b) == list(range(500))
    pad = sum(max(durations[b]) * len(b) - durations[b].sum() for b in batches)
    perm = rng.permutation(500)
    rand_pad = sum(max(durations[b]) * len(b) - durations[b].sum()
                   for b in (perm[i:i + 16] for i in range(0, 500, 16)))
    assert pad < 0.2 * rand_pad
    # reshuffled per epoch, reproducible per (seed, epoch)
    s.set_epoch(1)
    e1 = list(s)
    assert e1 != batches
    again = BucketBatchSampler(durations, batch_size=16, shuffle=True, seed=0)
    again.set_epoch(1)
    assert list(again) == e1
    s.set_epoch(0)
    assert list(s) == batches


def test_bucketing_shards_equally_across_ranks():
    durations = np.arange(103, dtype=float)
    shards = [list(BucketBatchSampler(durations, 8, shuffle=True, seed=0, num_replicas=3, rank=r)) for r in range(3)]
    assert len({len(s) for s in shards}) == 1
    covered = {i for s in shards for b in s for i in b}
    assert covered == set(range(103))


def test_eval_batches_sorted_by_length():
    durations = [5.0, 1.0, 3.0, 2.0]
    assert list(BucketBatchSampler(durations, 2, shuffle=False)) == [[1, 3], [2, 0]]


def test_batch_moves_to_a_device_as_a_whole():
    """Lightning moves the typed batch field by field (here to the meta device, no GPU needed)."""
    from lightning.fabric.utilities.apply_func import move_data_to_device

    b = collate([item(0, 5), item(1, 3)])
    moved = move_data_to_device(b, torch.device("meta"))
    assert type(moved).__name__ == "Batch" and moved.waveforms.device.type == "meta"
    assert moved.labels.device.type == "meta" and moved.texts == ["t0", "t1"] and moved.ids == b.ids
