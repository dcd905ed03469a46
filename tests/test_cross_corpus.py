"""The cross-corpus grid (kind: cross_corpus ablation files): train on X, test on all of Y."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from fixtures import ravdess, tess
from zoo.ablate import cross_corpus
from zoo.errors import ZooUserError

ROOT = Path(__file__).resolve().parents[1]


def spec_file(tmp_path: Path, roots: dict) -> Path:
    doc = {"name": "cc", "kind": "cross_corpus", "label_map": "4class",
           "corpora": {"ravdess": {"config": str(ROOT / "configs/data/ravdess.yaml"), "root": roots["ravdess"]},
                       "tess": {"config": str(ROOT / "configs/data/tess.yaml"), "root": roots["tess"]},
                       "cremad": {"config": str(ROOT / "configs/data/cremad.yaml"), "root": str(tmp_path / "none")}},
           "model": [str(ROOT / "configs/model/audio_cnn.yaml"), str(ROOT / "configs/model/tiny/audio_cnn.yaml")],
           "overrides": {"trainer.max_epochs": 1, "trainer.enable_progress_bar": False, "data.init_args.cache_dir": None,
                         "data.init_args.max_seconds": 1.0, "data.init_args.batch_size": 4,
                         "data.init_args.split": {"mode": "random", "val_fraction": 0.25, "test_fraction": 0.25}}}
    p = tmp_path / "cc.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def test_dry_run_lists_fits_and_cross_tests_and_skips_missing_corpora(tmp_path, capsys):
    ravdess.write_tree(tmp_path / "r")
    tess.write_tree(tmp_path / "t")
    from zoo.ablate import main

    main(["--config", str(spec_file(tmp_path, {"ravdess": str(tmp_path / "r"), "tess": str(tmp_path / "t")})),
          "--out", str(tmp_path / "out"), "--dry-run"])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 4 and sum(" fit " in ln for ln in lines) == 2
    assert any("test_ravdess_on_tess" in ln and "--data.test_split=all" in ln for ln in lines)
    assert "skipped cremad" in err


def test_the_grid_writes_the_matrix(tmp_path, run):
    ravdess.write_tree(tmp_path / "r")
    tess.write_tree(tmp_path / "t")
    spec = cross_corpus.load(spec_file(tmp_path, {"ravdess": str(tmp_path / "r"), "tess": str(tmp_path / "t")}))

    def in_process(argv):
        return run(*argv, cwd=tmp_path).returncode
    matrix = cross_corpus.run(spec, tmp_path / "out", execute=in_process)
    assert set(matrix) == {"ravdess", "tess"}
    assert all(0.0 <= v <= 1.0 for row in matrix.values() for v in row.values())
    rows = list(csv.reader(open(tmp_path / "out/matrix.csv")))
    assert rows[0] == ["trained on \\ tested on", "ravdess", "tess"] and len(rows) == 3
    assert (tmp_path / "out/matrix.png").stat().st_size > 1000
    assert "| ravdess |" in (tmp_path / "out/matrix.md").read_text()


def test_fewer_than_two_corpora_is_an_error(tmp_path):
    ravdess.write_tree(tmp_path / "r")
    spec = cross_corpus.load(spec_file(tmp_path, {"ravdess": str(tmp_path / "r"), "tess": str(tmp_path / "no")}))
    with pytest.raises(ZooUserError, match="at least two corpora whose root exists.*missing: cremad, tess"):
        cross_corpus.run(spec, tmp_path / "out", dry_run=True)


def test_a_checkpoint_of_other_classes_is_refused_with_the_label_map_advice():
    """Tested on a corpus of other classes without a label map: a message, not a shape error."""
    from zoo.models import AudioCNN

    model = AudioCNN(class_names=["angry", "happy", "sad"], channels=[4], hidden=4)
    ckpt = {"hyper_parameters": {"class_names": ["angry", "calm", "happy", "sad"]}}
    with pytest.raises(ZooUserError, match=r"trained on the classes \['angry', 'calm'.*label_map"):
        model.on_load_checkpoint(ckpt)
    # same classes in another order would put every weight on the wrong class: refused too
    with pytest.raises(ZooUserError):
        model.on_load_checkpoint({"hyper_parameters": {"class_names": ["sad", "happy", "angry"]}})
    model.on_load_checkpoint({"hyper_parameters": {"class_names": ["angry", "happy", "sad"]}})
