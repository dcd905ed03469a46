"""MSP-Podcast adapter: consensus labels, official split, dims, O/X, bad input."""
from __future__ import annotations

from collections import Counter

import pytest

from fixtures.msp_podcast import write_tree
from zoo.data.corpora import MSPPodcast
from zoo.errors import CorpusError, ProblemLog


def test_records_split_and_dims(tmp_path):
    info = write_tree(tmp_path)
    c = MSPPodcast(root=str(tmp_path))
    p = ProblemLog()
    utts = c.load(p)
    assert not p.items and len(utts) == info["n"] == 20
    assert Counter(u.split for u in utts) == {"train": 12, "val": 4, "test": 4}
    u = utts[1]
    assert u.dims_scale == (1.0, 7.0) and u.dims["arousal"] == pytest.approx((u.meta["dims_raw"]["arousal"] - 1) / 6)
    assert any(u.speaker is None for u in MSPPodcast(root=str(tmp_path), keep_other=True).load(ProblemLog()))
    assert c.skipped.counts == {"EmoClass O (other)": 3, "EmoClass X (no agreement)": 3,
                                "Test2 rows (test_set: Test1)": 4, "audio without a label row": 1,
                                "labels_detailed.csv: rater label 'Other' (not one of the 8 classes)": 12 + 2 * 2}
    other = MSPPodcast(root=str(tmp_path), keep_other=True, test_set="Test2").load(ProblemLog())
    assert {"other", "no agreement"} <= {u.label for u in other}
    assert {u.meta["split_set"] for u in other if u.split == "test"} == {"Test2"}


def test_rater_labels_become_the_soft_label(tmp_path):
    """labels_detailed.csv: two raters with the consensus, one Neutral, one Other (left out)."""
    write_tree(tmp_path)
    utts = {u.id: u for u in MSPPodcast(root=str(tmp_path)).load(ProblemLog())}
    angry = utts["MSP-PODCAST_0001_0001"]  # EmoClass A, the first segment
    assert angry.label == "angry" and angry.soft == pytest.approx({"angry": 2 / 3, "neutral": 1 / 3})
    neutral = utts["MSP-PODCAST_0002_0003"]  # EmoClass N: all three raters on neutral
    assert neutral.soft == {"neutral": 1.0}
    assert utts["MSP-PODCAST_0003_0003"].soft is None  # no rater rows: no soft label
    assert all(u.soft is None for u in MSPPodcast(root=str(tmp_path), detailed_file=None).load(ProblemLog()))


def test_bad_rows_are_named(tmp_path):
    write_tree(tmp_path)
    lab = tmp_path / "Labels" / "labels_consensus.csv"
    lines = lab.read_text().splitlines()
    lines[1] = lines[1].replace(",A,", ",Q,")            # unknown class
    lines[2] = lines[2].replace("Train", "Holdout")      # unknown split
    lines.append("MSP-PODCAST_0500_0001.wav,N,4.0,4.0,4.0,1,Male,Train")  # no audio
    lines.append(lines[3])                                # duplicate
    lab.write_text("\n".join(lines) + "\n")
    p = ProblemLog("skip")
    MSPPodcast(root=str(tmp_path)).load(p)
    text = p.summary()
    assert len(p) == 4 and "unknown EmoClass 'Q'" in text and "unknown Split_Set 'Holdout'" in text
    assert "audio not found: Audios/MSP-PODCAST_0500_0001.wav" in text and "duplicate FileName" in text
    assert "row 2" in text


def test_header_and_roots(tmp_path):
    write_tree(tmp_path / "MSP")
    with pytest.raises(CorpusError, match="Audios/ and Labels/"):
        MSPPodcast(root=str(tmp_path / "MSP" / "Labels" / "..x")).load(ProblemLog())
    assert len(MSPPodcast(root=str(tmp_path)).load(ProblemLog())) == 20  # one level above
    (tmp_path / "MSP" / "Labels" / "labels_consensus.csv").write_text("FileName,EmoClass\nx.wav,A\n")
    with pytest.raises(CorpusError, match="lacks the column"):
        MSPPodcast(root=str(tmp_path / "MSP")).load(ProblemLog())
    with pytest.raises(CorpusError, match="labels_file"):
        MSPPodcast(root=str(tmp_path / "MSP"), labels_file="nope.csv").load(ProblemLog())
