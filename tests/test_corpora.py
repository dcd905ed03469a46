"""Every registered corpus, through its seeded fixture generator and the DataModule; the registry
and what is derived from it (docs table, manifest command)."""
from __future__ import annotations

import hashlib
import importlib
from collections import Counter
from pathlib import Path

import pytest

from zoo.data import EmotionDataModule
from zoo.data.corpora import Corpus, registry
from zoo.errors import ZooUserError

ROOT = Path(__file__).resolve().parents[1]
NAMES = sorted(registry())


def _fixture(name: str, root: Path, seed: int = 0):
    try:
        mod = importlib.import_module(f"fixtures.{name}")
    except ModuleNotFoundError:
        pytest.fail(f"corpus {name!r} is registered but has no fixture generator tests/fixtures/{name}.py")
    return mod.make(root, seed=seed)


def test_the_issue_names_are_registered():
    assert {"aihub", "emodb", "manifest", "synthetic"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_corpus_through_its_fixture_and_the_datamodule(name, tmp_path):
    fx = _fixture(name, tmp_path / name)
    assert type(fx.corpus).name == name and fx.corpus.info is not None
    dm = EmotionDataModule(corpus=fx.corpus, cache_dir=None, modalities=["audio"], batch_size=4,
                           split=fx.split, **fx.options)
    dm.prepare_data()
    dm.setup("fit")
    utts = dm.split("all")
    e = fx.expected
    assert len(utts) == e.n
    assert Counter(u.label for u in utts) == e.labels
    assert set(dm.class_names) >= set(e.labels)
    if e.speakers is None:
        assert not any(u.speaker for u in utts)
    else:
        assert len({u.speaker for u in utts}) == e.speakers
    if e.sessions is not None:
        assert len({u.session for u in utts}) == e.sessions
    assert sum(bool(u.dims) for u in utts) == e.with_dims
    assert all(0.0 <= v <= 1.0 for u in utts for v in u.dims.values())
    assert all(u.dims_scale is not None for u in utts if u.dims)
    assert sum(bool(u.votes or u.soft) for u in utts) == e.with_soft
    if e.with_text is not None:
        assert sum(bool((u.text or "").strip()) for u in utts) == e.with_text
    # splits cover the corpus once; a batch comes out with audio (and ratings, when rated)
    assert sorted(u.id for u in utts) == sorted({u.id for u in utts})
    batch = next(iter(dm.train_dataloader()))
    assert batch.waveforms is not None and batch.waveforms.shape[0] == len(batch) > 0
    assert (batch.labels >= 0).all()
    if e.with_dims:
        assert batch.dims.shape == batch.dims_mask.shape == (len(batch), 3)
    else:
        assert batch.dims is None


@pytest.mark.parametrize("name", NAMES)
def test_fixture_generators_are_seeded(name, tmp_path):
    def digest(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file() and p.suffix != ".lock"
                and "README" not in p.name}  # the synthetic README records the generation time
    _fixture(name, tmp_path / "a")
    _fixture(name, tmp_path / "b")
    a, b = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert a and a == b


def test_dims_and_their_mask_flow_into_the_batch(tmp_path):
    fx = _fixture("manifest", tmp_path)
    dm = EmotionDataModule(corpus=fx.corpus, cache_dir=None, modalities=["audio"], batch_size=16,
                           split={"use_split_column": False, "mode": "random", "val_fraction": 0.0,
                                  "test_fraction": 0.25}, bucketing=False, label_mode="soft")
    dm.setup("fit")
    by_id = {u.id: u for u in dm.split("all")}
    b = next(iter(dm.train_dataloader()))
    for i, uid in enumerate(b.ids):
        u = by_id[uid]
        for j, d in enumerate(("arousal", "valence", "dominance")):
            assert bool(b.dims_mask[i, j]) == (d in u.dims)
            assert float(b.dims[i, j]) == pytest.approx(u.dims.get(d, 0.0), abs=1e-6)
        # soft labels from the manifest's soft column: 0.75 on the label, 0.25 on the other class
        assert float(b.soft[i, dm.class_names.index(u.label)]) == pytest.approx(0.75)
    assert (~b.dims_mask[:, 2]).all()  # nobody rated dominance


def test_every_adapter_imports_only_the_standard_library():
    """Importing the package imports every registered adapter; none may pull in torch, numpy or
    audio libraries, so listing corpora (python -m zoo manifest, the docs table) and reading a
    corpus's rows stay light and do not depend on the model stack."""
    import subprocess
    import sys

    heavy = ("torch", "lightning", "torchaudio", "numpy", "soundfile", "transformers")
    code = ("import sys; import zoo.data.labels, zoo.data.corpora; "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules), len(zoo.data.corpora.registry()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded, count = out.stdout.strip().rsplit(" ", 1)
    assert int(count) == len(NAMES)
    assert loaded == "[]", f"an adapter in zoo/data/corpora/ imports {loaded}: adapters use the standard library only"


def test_a_duplicate_corpus_name_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        class Again(Corpus, name="emodb"):  # noqa: F841
            pass
    assert registry()["emodb"].__name__ == "EmoDB"


def test_the_docs_table_is_generated_from_the_registry():
    from zoo.data.corpus_table import DOC, markdown_table, render

    doc = DOC.read_text(encoding="utf-8")
    assert render(doc) == doc, "docs/data.md is stale: run python -m zoo.data.corpus_table"
    for name in NAMES:
        assert f"| `{name}` |" in markdown_table()
        cfg = registry()[name].info.config
        assert cfg == "-" or (ROOT / cfg).is_file(), f"{name}: data config {cfg} does not exist"


def test_manifest_command_choices_come_from_the_registry(capsys):
    from zoo.data.export_manifest import exportable, main

    assert set(exportable()) == {n for n, c in registry().items() if c.exportable}
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for n in exportable():
        assert n in out


@pytest.mark.parametrize("name", [n for n in NAMES if registry()[n].exportable])
def test_every_exportable_corpus_freezes_into_a_manifest_that_reads_back(name, tmp_path):
    from zoo.data.corpora import Manifest
    from zoo.data.export_manifest import export_manifest
    from zoo.errors import ProblemLog

    fx = _fixture(name, tmp_path / name)
    out = tmp_path / "m.csv"
    root = getattr(fx.corpus, "root")
    n = export_manifest(name, root, str(out), **({"tie_break": fx.options["tie_break"]}
                                                 if "tie_break" in fx.options else {}))
    back = Manifest(path=str(out)).load(ProblemLog())
    assert n == len(back) == fx.expected.n
    assert Counter(u.label for u in back) == fx.expected.labels
    assert sum(bool(u.dims) for u in back) == fx.expected.with_dims
    assert sum(bool(u.soft) for u in back) == fx.expected.with_soft
    if fx.expected.sessions is not None:
        assert len({u.session for u in back}) == fx.expected.sessions


def test_a_corpus_that_is_not_a_corpus_is_refused():
    with pytest.raises(ZooUserError, match="zoo.data.corpora.Corpus"):
        EmotionDataModule(corpus="emodb")


def test_split_options_are_checked_when_the_config_is_read():
    from zoo.data import SplitOptions

    with pytest.raises(ZooUserError, match="split.fold"):
        SplitOptions(mode="kfold", num_folds=5, fold=5)
    with pytest.raises(ZooUserError, match="split.val_fraction"):
        SplitOptions(val_fraction=0.6, test_fraction=0.5)


def test_leave_one_session_out_folds_are_the_sessions_in_order():
    from zoo.data.splits import assign_splits
    from zoo.data.utterance import Utterance

    utts = [Utterance(id=f"u{i}", audio=None, label="ab"[i % 2], speaker=f"S{i % 5}{'FM'[i % 2]}",
                      session=f"Session{i % 5 + 1}") for i in range(50)]
    for fold in range(5):
        sp = assign_splits(utts, mode="kfold", group_by="session", num_folds=5, fold=fold, seed=fold)
        assert {utts[i].session for i in sp["test"]} == {f"Session{fold + 1}"}
        assert not {utts[i].session for i in sp["test"]} & {utts[i].session for i in sp["train"] + sp["val"]}
