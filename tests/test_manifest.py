"""Manifest adapter: CSV/TSV/JSONL, path resolution, split normalisation, bad rows."""
from __future__ import annotations

import json
import os

import pytest

from zoo.data.corpora.manifest import load_manifest
from zoo.errors import CorpusError, ProblemLog


def write(path, text, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp949"])
def test_csv_paths_splits_extras(tmp_path, encoding):
    absolute = tmp_path / "elsewhere" / "abs.wav"
    m = write(tmp_path / "data" / "m.csv",
              "path, Label ,text,speaker,split,room\n"
              f"wavs/a.wav,Angry,화가 나,s1,train,A\n"
              f" {absolute} ,Sadness\t,,s2,Validation,B\n"
              "../up/c.wav,Fear,,s1,DEV,\n"
              "\n"
              "d.wav,Fear,,,test,C\n"
              "e.wav,Neutral,,,,D\n", encoding)
    # the absolute path and ../up lie outside the manifest's folder: allowed explicitly
    utts = load_manifest(m, problems=(p := ProblemLog()), allow_outside_root=True)
    assert not p.items
    assert [u.id for u in utts] == ["a", "abs", "c", "d", "e"]
    assert utts[0].audio == str(tmp_path / "data" / "wavs" / "a.wav")
    assert utts[1].audio == str(absolute)
    assert utts[2].audio == str(tmp_path / "up" / "c.wav")
    assert [u.label for u in utts] == ["Angry", "Sadness", "Fear", "Fear", "Neutral"]
    assert [u.split for u in utts] == ["train", "val", "val", "test", None]
    assert utts[0].text == "화가 나" and utts[1].text is None
    assert [u.speaker for u in utts] == ["s1", "s2", "s1", None, None]
    assert utts[0].meta["room"] == "A" and utts[0].meta["row"] == 2 and utts[4].meta["row"] == 7
    assert utts[0].meta["manifest"] == str(m)
    assert utts[0].votes == () and utts[0].group is None


def test_relative_manifest_path(tmp_path, monkeypatch):
    write(tmp_path / "sub" / "m.csv", "path,label\nx.wav,A\n")
    monkeypatch.chdir(tmp_path)
    [u] = load_manifest("sub/m.csv", problems=ProblemLog())
    assert os.path.isabs(u.audio) and u.audio == str(tmp_path / "sub" / "x.wav")


def test_jsonl(tmp_path):
    lines = [
        {"path": "a.wav", "label": "Happiness", "speaker": 7, "split": "valid", "score": 0.5},
        {"path": "b/a.wav", "label": "Fear", "id": "custom"},
        {"path": "c/a.wav", "label": "Fear"},
        {"path": "d/a.wav", "label": "Fear"},
    ]
    m = write(tmp_path / "m.jsonl", "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n")
    utts = load_manifest(m, problems=(p := ProblemLog()))
    assert not p.items
    assert [u.id for u in utts] == ["a", "custom", "a-2", "a-3"]
    assert utts[0].speaker == "7" and utts[0].split == "val" and utts[0].meta["score"] == 0.5
    assert utts[1].audio == str(tmp_path / "b" / "a.wav")


def test_json_array_and_tsv(tmp_path):
    m = write(tmp_path / "m.json", json.dumps([{"path": "a.wav", "label": "X"}]))
    assert [u.label for u in load_manifest(m, problems=ProblemLog())] == ["X"]
    m = write(tmp_path / "m.tsv", "path\tlabel\tsplit\na b.wav\tY\ttest\n")
    [u] = load_manifest(m, problems=ProblemLog())
    assert u.id == "a b" and u.split == "test"


def test_missing_label_row_is_problem_with_row(tmp_path):
    m = write(tmp_path / "m.csv", "path,label,split\na.wav,A,train\nb.wav, ,train\n,B,test\nc.wav,C,holdout\n")
    problems = ProblemLog("skip")
    utts = load_manifest(m, problems=problems)
    assert [u.id for u in utts] == ["a"]
    got = {(p.row, p.column, p.reason.split(":")[0]) for p in problems.items}
    assert got == {(3, "label", "empty label"), (4, "path", "empty path"), (5, "split", "unknown split")}
    with pytest.raises(CorpusError, match=r"m\.csv, row 3, column 'label': empty label"):
        _check(problems.items)


def _check(items):
    log = ProblemLog("raise")
    log.items.extend(items)
    log.check("manifest")


def test_jsonl_missing_key_and_bad_json(tmp_path):
    m = write(tmp_path / "m.jsonl", '{"path": "a.wav", "label": "A"}\n{"path": "b.wav"}\n{oops\n[1]\n')
    problems = ProblemLog("skip")
    assert [u.id for u in load_manifest(m, problems=problems)] == ["a"]
    assert [(p.row, p.reason.split(":")[0]) for p in problems.items] == [
        (3, "invalid JSON"), (4, "not a JSON object"), (2, "empty label")]


@pytest.mark.parametrize("name,text", [
    ("m.csv", "path,emotion\na.wav,A\n"),
    ("m.jsonl", '{"path": "a.wav", "emotion": "A"}\n'),
])
def test_missing_label_column(tmp_path, name, text):
    m = write(tmp_path / name, text)
    with pytest.raises(CorpusError, match=rf"{name} lacks the column\(s\) 'label'"):
        load_manifest(m, problems=ProblemLog())


def test_bad_files(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_manifest(tmp_path / "none.csv", problems=ProblemLog())
    with pytest.raises(CorpusError, match="unknown extension"):
        load_manifest(write(tmp_path / "m.txt", "path,label\n"), problems=ProblemLog())
    with pytest.raises(CorpusError, match="empty"):
        load_manifest(write(tmp_path / "e.csv", ""), problems=ProblemLog())


def test_zip_member_paths(tmp_path):
    m = write(tmp_path / "m.csv", "path,label\nwavs.zip::inner/x.wav,A\n")
    [u] = load_manifest(m, problems=ProblemLog())
    assert u.audio == f"{tmp_path / 'wavs.zip'}::inner/x.wav" and u.id == "x"
