"""AI Hub KETI-02-002 adapter: the seed rows as users download them, and every quirk."""
from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path

import pytest
import soundfile as sf

from fixtures.aihub import (EXPECTED_MAJORITY, HEADER, SEED_ROWS, make_row, seed_cells,
                                    write_aihub_fixture)
from zoo.data.corpora.aihub import (CONVERSATION_GAP, AIHub, conversation_groups, load_renamed_wavs,
                                    objectid_time, read_aihub)
from zoo.data.labels import apply_label_policy
from zoo.data.corpora.aihub import AIHUB_EMOTIONS
from zoo.errors import CorpusError, ProblemLog

SEED_IDS = [r[0] for r in SEED_ROWS]


def load(root, on_error="raise", **kw):
    problems = ProblemLog(on_error)
    utts, summary = read_aihub(root, problems=problems, **kw)
    return utts, summary, problems


def test_seed_rows_cp949(tmp_path):
    fx = write_aihub_fixture(tmp_path)
    assert fx.csv.read_bytes().decode("cp949").startswith("wav_id,발화문,상황,1번 감정")
    utts, summary, problems = load(tmp_path)
    assert not problems.items
    assert [u.id for u in utts] == SEED_IDS
    u = utts[2]
    assert u.text == SEED_ROWS[2][1]
    assert u.votes == ("Sadness", "Sadness", "Angry", "Angry", "Angry")
    assert u.intensities == (2, 2, 1, 1, 1)
    assert u.label is None and u.speaker is None and u.split is None
    assert u.meta["situation"] == "Disgust"
    assert u.meta["release"] == "4차년도" and u.meta["row"] == 4 and u.meta["csv"] == str(fx.csv)
    assert u.meta["age"] == 31 and u.meta["gender"] == "남"
    assert Path(u.audio).is_file() and Path(u.audio).stem == u.id
    info = sf.info(u.audio)
    assert info.samplerate == 48_000 and info.channels == 1 and info.subtype == "PCM_16"
    assert summary.encodings == {"4차년도.csv": "cp949"} and summary.rows_read == 13
    # all 13 expected majority labels through the label policy
    kept, dropped = apply_label_policy(utts)
    assert {u.id: u.label for u in kept} == EXPECTED_MAJORITY and not dropped


def test_situation_normalised_never_label(tmp_path):
    write_aihub_fixture(tmp_path)
    utts = AIHub(root=tmp_path, require_audio=True).load(ProblemLog())
    assert [u.meta["situation"] for u in utts] == (
        ["Sadness"] * 2 + ["Disgust"] * 5 + ["Fear"] * 5 + ["Angry"])
    assert all(u.label is None for u in utts)


@pytest.mark.parametrize("encoding", ["cp949", "utf-8", "utf-8-sig"])
def test_encodings(tmp_path, encoding):
    write_aihub_fixture(tmp_path, encoding=encoding)
    utts, summary, _ = load(tmp_path)
    assert [u.text for u in utts] == [r[1] for r in SEED_ROWS]
    assert summary.encodings["4차년도.csv"] == encoding


def test_undecodable_csv(tmp_path):
    (tmp_path / "x.csv").write_bytes(b"wav_id,\xff\xfe\xff\n")
    with pytest.raises(CorpusError, match="x.csv"):
        load(tmp_path)


def test_header_whitespace_variants_and_stray_tabs(tmp_path):
    header = [" wav_id", "발화문\t", "상황", "1번감정", "1번 감정 세기", "2번 감정", "2번감정세기",
              "3번 감정", "3번 감정세기", "4번 감정", "4번 감정세기", "5번  감정", "5번 감정세기",
              "나이 ", "성별"]
    rows = [[c + "\t" if i % 2 else " " + c for i, c in enumerate(r)] for r in seed_cells()]
    write_aihub_fixture(tmp_path, header=header, rows=rows)
    utts, _, problems = load(tmp_path)
    assert not problems.items
    assert [u.id for u in utts] == SEED_IDS
    assert utts[0].text == SEED_ROWS[0][1] and utts[0].intensities == (1,) * 5


def test_mixed_case_labels_and_situations(tmp_path):
    rows = seed_cells()
    rows[0][3:13:2] = ["sadness", "SADNESS", "Sadness ", "sAdNeSs", "\tsad"]
    rows[12][3:13:2] = ["disgust", "angry", "ANGER", "Angry", "fear"]
    rows[0][2], rows[12][2] = "Sadness", "ANGRY"
    write_aihub_fixture(tmp_path, rows=rows)
    utts, _, problems = load(tmp_path)
    assert not problems.items
    assert utts[0].votes == ("Sadness",) * 5 and utts[0].meta["situation"] == "Sadness"
    assert utts[12].votes == ("Disgust", "Angry", "Angry", "Angry", "Fear")
    assert utts[12].meta["situation"] == "Angry"
    assert all(v in AIHUB_EMOTIONS for u in utts for v in u.votes)


def test_unknown_situation_kept_as_written(tmp_path):
    rows = seed_cells()
    rows[0][2] = "awkward"
    write_aihub_fixture(tmp_path, rows=rows)
    utts, summary, problems = load(tmp_path)
    assert not problems.items and utts[0].meta["situation"] == "awkward"
    assert summary.unknown_situations == {"awkward": 1}


def test_unknown_label_and_bad_intensity_name_row_and_column(tmp_path):
    rows = seed_cells()
    rows[1][7] = "Joyful"  # row 2 of data = line 3, column "3번 감정"
    rows[4][10] = "3"  # line 6, "4번감정세기"
    rows[5][12] = "x"  # line 7, "5번 감정세기"
    fx = write_aihub_fixture(tmp_path, rows=rows)
    with pytest.raises(CorpusError) as e:
        AIHub(root=tmp_path, require_audio=True).load(p := ProblemLog())
        p.check("AI Hub")
    problems = {(pr.row, pr.column): pr for pr in p.items}
    assert set(problems) == {(3, "3번 감정"), (6, "4번감정세기"), (7, "5번 감정세기")}
    assert "Joyful" in problems[3, "3번 감정"].reason
    assert problems[3, "3번 감정"].source == str(fx.csv)
    assert "row 3, column '3번 감정'" in str(e.value) and "4차년도.csv" in str(e.value)


def test_on_error_skip_drops_and_counts(tmp_path, caplog):
    rows = seed_cells()
    rows[1][7] = "Joyful"
    rows[2][4] = "7"
    write_aihub_fixture(tmp_path, rows=rows, missing=[SEED_IDS[3]])
    problems = ProblemLog("skip")
    utts = AIHub(root=tmp_path, require_audio=True).load(problems)
    assert len(utts) == 10 and SEED_IDS[1] not in {u.id for u in utts}
    assert problems.counts() == {"unknown label": 1, "bad intensity": 1, "wav not found": 1}
    with caplog.at_level(logging.WARNING, logger="zoo"):
        problems.check("AI Hub")
    assert "skipped 3 row(s)" in caplog.text


def test_missing_column_is_corpus_error(tmp_path):
    header = [h for h in HEADER if h != "3번 감정세기"]
    rows = [r[:8] + r[9:] for r in seed_cells()]
    write_aihub_fixture(tmp_path, header=header, rows=rows, csv_name="5차년도_2차.csv")
    with pytest.raises(CorpusError, match=r"5차년도_2차\.csv.*'3번감정세기'"):
        load(tmp_path)


def test_sidecar_without_wav_id_is_skipped(tmp_path, caplog):
    write_aihub_fixture(tmp_path, csv_name="synthetic.csv")
    (tmp_path / "synthetic_meta.csv").write_text("speaker,pitch\ns1,120\n", encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="zoo"):
        utts, summary, _ = load(tmp_path)
    assert len(utts) == 13 and summary.skipped_csvs == ["synthetic_meta.csv"]
    assert "synthetic_meta.csv" in caplog.text and utts[0].meta["release"] == "synthetic"


def test_no_label_csv(tmp_path):
    with pytest.raises(CorpusError, match="no AI Hub label CSV"):
        load(tmp_path)
    with pytest.raises(CorpusError, match="not a folder"):
        load(tmp_path / "nope")


def test_nested_folders_and_several_releases(tmp_path):
    write_aihub_fixture(tmp_path, rows=seed_cells()[:6], csv_name="4차_14606.csv", nested=True)
    write_aihub_fixture(tmp_path, rows=seed_cells()[6:], csv_name="5차년도.csv", nested=True,
                        encoding="utf-8")
    assert (tmp_path / "5차년도" / "5차년도_wav" / f"{SEED_IDS[7]}.wav").is_file()
    utts, summary, problems = load(tmp_path)
    assert not problems.items and sorted(u.id for u in utts) == sorted(SEED_IDS)
    assert summary.rows_by_release == {"4차_14606": 6, "5차년도": 7}
    assert {u.meta["release"] for u in utts} == {"4차_14606", "5차년도"}
    assert all(Path(u.audio).is_file() for u in utts)


def test_zip_members(tmp_path):
    fx = write_aihub_fixture(tmp_path, zipped=True)
    assert not list(tmp_path.rglob("*.wav"))
    utts, summary, problems = load(tmp_path)
    assert not problems.items and summary.zip_members == 13 and summary.wav_files == 0
    u = utts[0]
    archive, member = u.audio.split("::", 1)
    assert archive == str(fx.archive.resolve()) and member == f"4차년도_wav/{u.id}.wav"
    with zipfile.ZipFile(archive) as z:
        data, sr = sf.read(io.BytesIO(z.read(member)))
    assert sr == 48_000 and data.ndim == 1 and len(data) > 0


def test_disk_wins_over_zip(tmp_path):
    write_aihub_fixture(tmp_path, zipped=True)
    write_aihub_fixture(tmp_path / "unzipped")  # same stems on disk (its CSV is not in the root)
    utts, summary, _ = load(tmp_path)
    assert all("::" not in u.audio for u in utts) and summary.duplicate_wav_files == 13


def test_renamed_wavs_mapping_missing_and_orphans(tmp_path):
    renamed = load_renamed_wavs()
    assert len(renamed) == 16 and len(set(renamed.values())) == 16
    assert all(objectid_time(k) and objectid_time(v) for k, v in renamed.items())
    csv_id, stem = "5e3292655807b852d9e03896", "5e38d5fe05fef317e874c705"
    assert renamed[csv_id] == stem
    rows = seed_cells()[:4] + [make_row(csv_id, "바꿔 저장된 파일", "sad", [("Sadness", 1)] * 5)]
    orphan = "5e40000005fef317e874c999"
    fx = write_aihub_fixture(tmp_path, rows=rows, wav_names={csv_id: stem},
                             missing=[SEED_IDS[1]], orphans=[orphan])
    problems = ProblemLog("skip")
    utts, summary = read_aihub(tmp_path, problems=problems)
    by_id = {u.id: u for u in utts}
    assert Path(by_id[csv_id].audio).stem == stem and by_id[csv_id].meta["wav_stem"] == stem
    assert summary.renamed_applied == 1 and summary.missing_wavs == 1
    [p] = problems.items
    assert p.reason == f"wav not found: {SEED_IDS[1]}.wav" and p.row == 3 and p.source == str(fx.csv)
    assert SEED_IDS[1] not in by_id
    assert summary.orphan_wavs == 1 and summary.orphan_examples == [orphan]


def test_require_audio_false_keeps_rows_without_wavs(tmp_path):
    write_aihub_fixture(tmp_path, missing=SEED_IDS)
    utts, summary, problems = load(tmp_path, require_audio=False)
    assert len(utts) == 13 and all(u.audio is None for u in utts) and not problems.items


def test_duplicate_wav_id_and_duplicate_transcripts(tmp_path):
    rows = seed_cells()
    rows.append(list(rows[0]))  # the same wav_id again
    write_aihub_fixture(tmp_path, rows=rows[:13])
    dup = make_row("5f0000000000000000000001", SEED_ROWS[7][1], "fear", [("Fear", 1)] * 5)
    dup2 = make_row("5f0000000000000000000002", "  " + SEED_ROWS[7][1].replace(" ", "  "), "fear",
                    [("Fear", 1)] * 5)
    write_aihub_fixture(tmp_path, rows=[rows[13], dup, dup2], csv_name="5차년도_2차.csv")
    problems = ProblemLog("skip")
    utts, summary = read_aihub(tmp_path, problems=problems)
    [p] = problems.items
    assert p.reason.startswith("duplicate wav_id") and p.row == 2 and "5차년도_2차" in p.source
    assert len(utts) == 15
    # SEED_ROWS[7]'s text appears three times (once in 4차년도, twice in 5차년도_2차)
    assert summary.duplicate_transcript_rows == 3 and summary.duplicate_transcripts == 1
    assert summary.duplicate_rows_by_release == {"4차년도": 1, "5차년도_2차": 2}
    assert "duplicate transcripts: 3 rows" in str(summary)


def test_conversation_groups_gap():
    t0 = 0x5ed9793b
    ids = [f"{t:08x}" + "0" * 16 for t in (t0, t0 + 30, t0 + 100, t0 + 160, t0 + 1000)]
    assert conversation_groups(ids, 60) == [f"conv-{ids[0]}"] * 2 + [f"conv-{ids[2]}"] * 2 + [f"conv-{ids[4]}"]
    # a gap equal to the threshold stays in the group; chaining is relative to the previous row
    assert len(set(conversation_groups(ids[:4], 60))) == 2
    assert len(set(conversation_groups(ids[:4], 30))) == 3
    assert len(set(conversation_groups(ids, float("inf")))) == 1
    # input order does not matter
    assert conversation_groups(ids[::-1], 60) == conversation_groups(ids, 60)[::-1]
    # non-ObjectId ids get their own group
    assert conversation_groups(["abc", ids[0]], 60) == ["conv-abc", f"conv-{ids[0]}"]
    with pytest.raises(ValueError):
        conversation_groups(ids, -1)


def test_conversation_groups_demographics():
    t0 = 0x5ed9793b
    ids = [f"{t:08x}" + f"{i:016x}" for i, t in enumerate((t0, t0 + 10, t0 + 20, t0 + 30))]
    keys = [(31, "남"), (24, "여"), (31, "남"), (24, "여")]  # two speakers interleaved
    groups = conversation_groups(ids, 60, keys)
    assert groups == [f"conv-{ids[0]}", f"conv-{ids[1]}", f"conv-{ids[0]}", f"conv-{ids[1]}"]
    assert len(set(conversation_groups(ids, 60))) == 1  # without keys they merge


def test_load_aihub_groups(tmp_path):
    write_aihub_fixture(tmp_path)
    utts = AIHub(root=tmp_path, conversation_gap=60).load(ProblemLog())
    groups = [u.group for u in utts]
    # rows 1-2 (another day); rows 3-13: gaps 29 35 31 66 70 22 36 27 32 43 s
    assert groups[:2] == [f"conv-{SEED_IDS[0]}"] * 2
    assert groups[2:6] == [f"conv-{SEED_IDS[2]}"] * 4
    assert groups[6] == f"conv-{SEED_IDS[6]}" and groups[7:] == [f"conv-{SEED_IDS[7]}"] * 6
    wide = AIHub(root=tmp_path, conversation_gap=120).load(ProblemLog())
    assert len({u.group for u in wide}) == 2
    # with demographics off and a huge gap, everything merges
    one = AIHub(root=tmp_path, conversation_gap=10**7,
                      group_by_demographics=False).load(ProblemLog())
    assert len({u.group for u in one}) == 1


def test_one_conversation_gap_default_for_training_export_and_grouping():
    """The corpus, the reader and the grouping function share one default (they drifted: 120 vs 60)."""
    import inspect

    from zoo.data.corpora.synthetic import Synthetic

    defaults = {f.__qualname__: inspect.signature(f).parameters[k].default for f, k in (
        (AIHub.__init__, "conversation_gap"), (Synthetic.__init__, "conversation_gap"),
        (read_aihub, "conversation_gap"), (conversation_groups, "gap_seconds"))}
    assert set(defaults.values()) == {CONVERSATION_GAP}, defaults


def test_stands_in_for_ai_hub_only_when_the_data_is_the_synthetic_corpus(tmp_path):
    from zoo.data.corpora.synthetic import Synthetic
    from zoo.data.synth import generate

    real = AIHub(root=tmp_path / "real")
    write_aihub_fixture(tmp_path / "real")
    real.load(ProblemLog())
    assert real.stands_in_for() is None  # already the real corpus: nothing to point at
    demo = AIHub(root=str(generate(tmp_path / "demo", size=14, seed=1)))
    demo.load(ProblemLog())
    assert demo.stands_in_for() == ("root", "/data/aihub", "AI Hub KETI-02-002")
    # the synthetic corpus's root is where it generates itself: it cannot take the real data's
    assert Synthetic(root=str(tmp_path / "demo"), size=14, corpus_seed=1).stands_in_for() is None


def test_bad_zip_warns_and_rows_report_missing(tmp_path, caplog):
    write_aihub_fixture(tmp_path, missing=SEED_IDS[:2])
    (tmp_path / "4차년도_wav.zip").write_bytes(b"PK\x03\x04 truncated download")
    problems = ProblemLog("skip")
    with caplog.at_level(logging.WARNING, logger="zoo"):
        utts, summary = read_aihub(tmp_path, problems=problems)
    assert len(utts) == 11 and summary.bad_zips and "cannot read the zip" in caplog.text
    assert problems.counts() == {"wav not found": 2}


def test_windows_zip_member_names(tmp_path):
    write_aihub_fixture(tmp_path, rows=seed_cells()[:1], missing=SEED_IDS[:1])
    with zipfile.ZipFile(tmp_path / "w.zip", "w") as z:
        z.writestr(f"wavs\\{SEED_IDS[0]}.wav", b"RIFF")
    [u] = load(tmp_path)[0]
    assert u.audio.endswith(f"w.zip::wavs\\{SEED_IDS[0]}.wav")
