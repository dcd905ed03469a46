"""The command line: help, config printing, clear user errors."""
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import zoo.models
from zoo.cli import main
from zoo.data.corpora import registry
from zoo.models import TextBERT

ROOT = Path(__file__).resolve().parents[1]


def test_top_level_help_lists_commands_without_loading_lightning():
    code = "import sys; from zoo.cli import main; main(['--help']); print('lightning' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    for cmd in ("fit", "validate", "test", "predict", "synth", "manifest"):
        assert f"  {cmd} " in out
    assert out.strip().endswith("False")


def test_fit_help_documents_data_and_model_options(run):
    r = run("fit", "--data.help", "EmotionDataModule")
    assert r.returncode == 0
    for opt in ("--data.corpus", "--data.label_mode", "--data.tie_break", "--data.min_agreement",
                "--data.split.mode", "--data.split.text_disjoint", "--data.on_error"):
        assert opt in r.stdout
    r = run("fit", "--data", "EmotionDataModule", "--data.corpus.help", "AIHub")
    assert r.returncode == 0 and "--corpus.root" in r.stdout and "--corpus.conversation_gap" in r.stdout
    r = run("fit", "--model.help", "AudioCNN")
    assert r.returncode == 0 and "--model.encoder" in r.stdout and "--model.spec_augment" in r.stdout


def test_print_config_resolves_combined_configs(run):
    r = run("fit", "--config", "configs/data/synthetic.yaml", "--config", "configs/model/audio_cnn.yaml",
            "--print_config")
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load(r.stdout)
    assert cfg["data"]["class_path"] == "zoo.data.EmotionDataModule"
    assert cfg["data"]["init_args"]["corpus"]["class_path"] == "zoo.data.corpora.Synthetic"
    assert cfg["model"]["class_path"] == "zoo.models.AudioCNN"
    assert cfg["checkpoint"]["monitor"] == "val/UA"


# configs/ablation/ holds ablation files, configs/labels/ label maps, not fit configs
# (tests/test_ablate.py and tests/test_label_maps.py read those)
@pytest.mark.parametrize("config", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs").rglob("*.yaml")
                                          if not {"ablation", "labels"} & set(p.parts)))
def test_every_shipped_config_parses(config, run):
    args = ["fit", "--config", config, "--print_config"]
    if "/trainer/" in config:
        args = ["fit", "--config", "configs/demo.yaml", "--config", config, "--print_config"]
    elif "/model/" in config:
        args = ["fit", "--config", "configs/data/synthetic.yaml", "--config", config, "--print_config"]
    elif "/data/" in config:
        args = ["fit", "--config", config, "--config", "configs/model/audio_cnn.yaml", "--print_config"]
    r = run(*args)
    assert r.returncode == 0, r.stderr[-2000:]


def test_missing_corpus_is_one_paragraph_not_a_traceback(tmp_path, run):
    r = run("fit", "--config", str(ROOT / "configs/demo.yaml"), "--data.corpus.root", str(tmp_path / "nope"),
            cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "zoo: error:" in r.stderr and "nope" in r.stderr and "zoo synth" in r.stderr


def test_bad_manifest_row_named_in_the_error(tmp_path, run):
    (tmp_path / "m.csv").write_text("path,label\na.wav,happy\nb.wav,\n")
    r = run("fit", "--config", str(ROOT / "configs/data/manifest.yaml"), "--config",
            str(ROOT / "configs/model/audio_cnn.yaml"), "--data.init_args.corpus.init_args.path", str(tmp_path / "m.csv"),
            cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "row 3" in r.stderr and "m.csv" in r.stderr


OLD_FORMS = {  # data blocks as configs wrote them before EmotionDataModule(corpus=...)
    "aihub": "data:\n  class_path: zoo.data.AIHubDataModule\n  init_args:\n    root: /data/aihub\n"
             "    conversation_gap: 120.0\n    split_mode: group\n    text_disjoint: true\n    batch_size: 32\n",
    "synthetic": "data:\n  class_path: zoo.data.SyntheticDataModule\n  init_args:\n    size: 600\n"
                 "    corpus_seed: 0\n    split_mode: group\n    val_fraction: 0.15\n",
    "manifest": "data:\n  class_path: zoo.data.ManifestDataModule\n  init_args:\n    manifest: m.csv\n"
                "    group_by: speaker\n    test_speakers: ['15', '16']\n",
    "emodb": "data:\n  class_path: EmoDBDataModule\n  init_args:\n    root: /data/emodb\n",
}


@pytest.mark.parametrize("old", sorted(OLD_FORMS))
def test_a_config_in_the_old_form_says_how_to_write_it_now(old, tmp_path, run):
    """Configs written for the removed per-corpus DataModules get the current form back."""
    (tmp_path / "old.yaml").write_text(OLD_FORMS[old], encoding="utf-8")
    r = run("fit", "--config", str(tmp_path / "old.yaml"), "--config", str(ROOT / "configs/model/audio_cnn.yaml"),
            cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "DataModule was replaced by zoo.data.EmotionDataModule" in r.stderr
    # the suggested block is a valid config: it parses as written
    block = r.stderr.split("Write it as:\n", 1)[1]
    (tmp_path / "new.yaml").write_text(block, encoding="utf-8")
    r = run("fit", "--config", str(tmp_path / "new.yaml"), "--config", str(ROOT / "configs/model/audio_cnn.yaml"),
            "--print_config", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "zoo.data.corpora." in r.stdout and "split:" in r.stdout


def test_old_flat_options_on_the_command_line_are_explained(tmp_path, run):
    r = run("fit", "--config", str(ROOT / "configs/demo.yaml"), "--data.init_args.split_mode", "random", cwd=tmp_path)
    assert r.returncode == 2 and "split_mode -> split.mode" in r.stderr and "Traceback" not in r.stderr


def test_unknown_option_is_rejected(tmp_path, run):
    r = run("fit", "--config", str(ROOT / "configs/demo.yaml"), "--data.init_args.no_such_option", "1", cwd=tmp_path)
    assert r.returncode != 0 and "no_such_option" in r.stderr and "Traceback" not in r.stderr


def test_optimizer_and_scheduler_from_the_command_line(run):
    r = run("fit", "--config", "configs/demo.yaml",
            "--model.init_args.optimizer", "torch.optim.SGD", "--model.init_args.optimizer.lr", "0.1",
            "--model.init_args.lr_scheduler", "torch.optim.lr_scheduler.StepLR",
            "--model.init_args.lr_scheduler.step_size", "5", "--print_config")
    assert r.returncode == 0, r.stderr
    model = yaml.safe_load(r.stdout)["model"]["init_args"]
    assert model["optimizer"]["class_path"] == "torch.optim.SGD" and model["optimizer"]["init_args"]["lr"] == 0.1
    assert model["lr_scheduler"]["init_args"]["step_size"] == 5


def test_unknown_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["frobnicate"])
    assert e.value.code == 2 and "frobnicate" in capsys.readouterr().err


@pytest.mark.parametrize("cls_path", ["zoo.data.EmotionDataModule", "zoo.data.splits.SplitOptions",
                                      "zoo.callbacks.EpochSummary", "zoo.callbacks.PredictionWriter",
                                      "zoo.callbacks.EarlyStopping"]
                         + [f"{c.__module__}.{c.__name__}" for c in registry().values()]
                         + [f"zoo.models.{name}" for name in zoo.models.__all__])
def test_every_option_is_documented(cls_path):
    """`--help` shows each __init__ argument's docstring entry: none may be missing."""
    import importlib
    import inspect
    import re

    mod, name = cls_path.rsplit(".", 1)
    cls = getattr(importlib.import_module(mod), name)
    documented = set()
    for klass in cls.__mro__:
        documented |= set(re.findall(r"^\s{8}(\w+):", klass.__doc__ or "", flags=re.M))
    missing = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass.__module__.split(".")[0] != "zoo":
            continue
        for p in inspect.signature(klass.__init__).parameters.values():
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in documented:
                missing.append(f"{klass.__name__}.{p.name}")
    assert not missing, f"undocumented options: {missing}"


def test_prediction_file_format_is_checked_early():
    from zoo.callbacks import PredictionWriter

    with pytest.raises(ValueError, match="jsonl or .csv"):
        PredictionWriter("preds.txt")


def test_prediction_writer_csv(tmp_path):
    import csv as csvlib
    from types import SimpleNamespace

    import torch

    from zoo.callbacks import PredictionWriter

    w = PredictionWriter(str(tmp_path / "p.csv"))
    out = {"ids": ["a", "b"], "probs": torch.tensor([[0.7, 0.3], [0.2, 0.8]]),
           "preds": torch.tensor([0, 1]), "labels": torch.tensor([1, -1])}
    w.write_on_epoch_end(SimpleNamespace(world_size=1), SimpleNamespace(class_names=["Angry", "Sad"]), [[out]], None)
    rows = list(csvlib.DictReader(open(tmp_path / "p.csv", encoding="utf-8")))
    assert [(r["id"], r["label"], r["true_label"]) for r in rows] == [("a", "Angry", "Sad"), ("b", "Sad", "")]
    # the columns of `python -m zoo infer --out x.csv`: one prob_<class> per class
    assert list(rows[0]) == ["id", "label", "true_label", "prob_Angry", "prob_Sad"]
    assert float(rows[1]["prob_Sad"]) == pytest.approx(0.8)


# -- errors a user can read (issue 15) ------------------------------------------------------------
def test_config_typo_is_one_paragraph_with_the_closest_key_and_the_file(tmp_path, run):
    bad = tmp_path / "model.yaml"
    bad.write_text("model:\n  class_path: zoo.models.AudioCNN\n  init_args:\n    hiden: 3\n")
    r = run("fit", "--config", "configs/data/synthetic.yaml", "--config", str(bad), "--print_config")
    assert r.returncode == 2 and r.stdout == ""
    lines = [x for x in r.stderr.splitlines() if not x.startswith("[zoo]")]
    assert lines[0].startswith("zoo: error: python -m zoo fit: AudioCNN (model) has no option 'hiden'")
    assert "did you mean 'hidden'?" in lines[0] and str(bad) in lines[0]
    assert len(lines) <= 3 and "usage:" not in r.stderr and "__main__" not in r.stderr
    r = run("fit", "--config", "configs/demo.yaml", "--trainer.max_epochz", "3", "--print_config")
    assert r.returncode == 2 and "did you mean '--trainer.max_epochs'?" in r.stderr


def test_wrong_class_path_lists_the_valid_classes(run):
    r = run("fit", "--config", "configs/data/synthetic.yaml", "--model", "zoo.models.AudioCN", "--print_config")
    assert r.returncode == 2 and "usage:" not in r.stderr
    assert "did you mean 'zoo.models.AudioCNN'?" in r.stderr
    assert all(f"zoo.models.{m}" in r.stderr for m in zoo.models.__all__ if m != "EmotionModule")


def test_fit_help_says_how_to_see_model_and_data_options(run):
    r = run("fit", "--help")
    assert r.returncode == 0
    head = r.stdout.split("usage:")[0]
    assert "--model.help AudioCNN" in head and "--data.help" in head
    assert all(m in head for m in zoo.models.__all__ if m != "EmotionModule")


def test_nested_override_of_a_fusion_branch_takes_effect_or_is_refused(run):
    base = ["fit", "--config", "configs/data/synthetic.yaml", "--config", "configs/model/late_fusion.yaml"]
    r = run(*base, "--model.init_args.text_branch.init_args.pretrained", "null",
            "--model.init_args.text_branch.init_args.num_layers", "1", "--print_config")
    assert r.returncode == 0, r.stderr
    branch = yaml.safe_load(r.stdout)["model"]["init_args"]["text_branch"]
    # typed: the branch's every option, resolved (a null is null, not the string 'None')
    assert branch["class_path"] == "zoo.models.TextBERT"
    assert branch["init_args"]["pretrained"] is None and branch["init_args"]["num_layers"] == 1
    assert branch["init_args"]["hidden_size"] == inspect.signature(TextBERT).parameters["hidden_size"].default
    r = run(*base, "--model.init_args.text_branch.init_args.pretraind", "null", "--print_config")
    assert r.returncode == 2 and "did you mean 'pretrained'?" in r.stderr and "Traceback" not in r.stderr
    assert "--model.init_args.text_branch.help TextBERT" in r.stderr


def test_a_fusion_branch_option_is_type_checked_and_its_class_must_be_a_zoo_model(run, tmp_path):
    base = ["fit", "--config", "configs/data/synthetic.yaml", "--config", "configs/model/late_fusion.yaml"]
    r = run(*base, "--model.init_args.audio_branch.init_args.hidden", "abc", "--print_config")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "model.init_args.audio_branch.init_args.hidden must be an integer > 0, got 'abc'" in r.stderr
    bad = tmp_path / "branch.yaml"
    bad.write_text("model:\n  init_args:\n    audio_branch:\n      class_path: zoo.models.AudioCNN\n"
                   "      init_args: {normalize: loud}\n")
    r = run(*base, "--config", str(bad), "--print_config")
    assert r.returncode == 2 and "audio_branch.init_args.normalize" in r.stderr and "'loud'" in r.stderr
    r = run(*base, "--model.init_args.audio_branch", "zoo.models.AudioCN", "--print_config")
    assert r.returncode == 2 and "did you mean 'zoo.models.AudioCNN'?" in r.stderr
    r = run(*base, "--model.init_args.audio_branch", "torch.nn.Linear", "--print_config")
    assert r.returncode == 2 and "A branch is a zoo model" in r.stderr
    # the old dict spelling with options beside class_path: the error shows the form
    r = run(*base, "--model.init_args.text_branch", '{"class_path": "zoo.models.TextBERT", "pretrained": null}',
            "--print_config")
    assert r.returncode == 2 and "class_path: zoo.models.TextBERT, init_args: {" in r.stderr


def test_a_fusion_branch_option_is_documented(run):
    r = run("fit", "--model", "LateFusion", "--model.init_args.audio_branch.help", "AudioCNN")
    assert r.returncode == 0, r.stderr
    assert "--audio_branch.channels" in r.stdout and "--audio_branch.normalize" in r.stdout
    assert "--audio_branch.class_names" not in r.stdout  # the fusion model passes it


@pytest.mark.parametrize("name", [m for m in zoo.models.__all__ if m != "EmotionModule"])
def test_every_family_shows_the_shared_options_with_their_types(name):
    """The families hand the shared options (optimizer, loss, targets, ...) to EmotionModule as
    ``**kwargs``; jsonargparse resolves ``super().__init__(**kwargs)`` from the source, so the CLI
    types, checks and documents them for every family (and for a fusion branch of that family)."""
    from jsonargparse import ArgumentParser

    cls = getattr(zoo.models, name)
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, "m", fail_untyped=False)
    actions = {a.dest: a for a in parser._actions}
    own = list(inspect.signature(cls.__init__).parameters)[1:]
    shared = list(inspect.signature(zoo.models.EmotionModule.__init__).parameters)[1:]
    missing = [p for p in (*own, *shared) if p not in ("args", "kwargs") and f"m.{p}" not in actions]
    assert not missing, f"{name}: the CLI does not see {missing}"
    assert "Literal" in str(getattr(actions["m.loss"], "_typehint", ""))  # typed, not Any


def test_nested_override_reaches_the_built_branch():
    from zoo.cli import build_cli

    cli = build_cli(["--config", str(ROOT / "configs/data/synthetic.yaml"), "--config",
                     str(ROOT / "configs/model/late_fusion.yaml"), "--config",
                     str(ROOT / "configs/model/tiny/late_fusion.yaml"), "--data.corpus.size", "48",
                     "--model.init_args.audio_branch.init_args.hidden", "24"], run=False)
    assert cli.model.audio.hparams.hidden == 24 and cli.model.audio.encoder.out_dim == 48  # BiLSTM: 2 x 24
    # each branch records its own init args (not the fusion model's config), and the fusion model
    # records the spec that rebuilds it
    assert "_class_path" not in cli.model.audio.hparams and "fusion" not in cli.model.audio.hparams
    assert cli.model.hparams["audio_branch"]["class_path"] == "zoo.models.audio.AudioCNN"
    assert cli.model.hparams["audio_branch"]["init_args"]["hidden"] == 24


def test_missing_hub_model_is_one_paragraph(run, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = run("fit", "--config", str(ROOT / "configs/data/synthetic.yaml"), "--config",
            str(ROOT / "configs/model/text_kobert.yaml"), "--data.corpus.size", "48", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    err = [x for x in r.stderr.splitlines() if x.startswith("zoo: error:")]
    assert len(err) == 1 and "'monologg/kobert' is not available" in err[0]
    for hint in ("Hugging Face cache", "pretrained: null", "configs/model/tiny/", "huggingface-cli download"):
        assert hint in err[0]
    assert len(r.stderr.splitlines()) < 20


def test_from_pretrained_reads_local_dirs_and_names_what_is_missing(tmp_path, monkeypatch):
    from zoo import hub

    calls = []

    def load(name, **kw):
        calls.append((name, kw))
        if kw.get("local_files_only") or not Path(name).is_dir():
            raise OSError("not cached")
        return "model"

    assert hub.from_pretrained(load, str(tmp_path), "the encoder") == "model"
    monkeypatch.setattr(hub, "hub_reachable", lambda: False)
    with pytest.raises(hub.HubModelMissing, match="'org/model' is not available"):
        hub.from_pretrained(load, "org/model", "the encoder")
    assert calls[-1] == ("org/model", {"local_files_only": True})  # the cache was tried, the hub not
    with pytest.raises(hub.HubModelMissing, match="this is a path"):
        hub.from_pretrained(load, str(tmp_path / "nope"), "the encoder")
