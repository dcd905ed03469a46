"""The seed deck's two-stage recipe, end to end through the CLI on the synthetic corpus:
train audio-only (fit + test, with its run outputs checked) and text-only, then late fusion from
their checkpoints with frozen encoders.

It also shows each modality learns what it should: the text model beats chance on utterances
whose emotion is in the words, the audio model on those whose emotion is in the voice (the
synthetic corpus puts the emotion in the voice, the words, or both, and records which in
synthetic_meta.csv), and the fused model keeps the voice cue where the text branch is blind to it.

Not asserted here: how the fusion compares with the better branch. The test split holds 72
utterances (13 conversations), where one utterance moves UA by 0.01-0.02, and the fusion head is
fitted on as few validation utterances: on the stable seed-0 split it scored 0.330 against audio
0.332 (text 0.277) with two torch threads and 0.394 against 0.426 with one (make test's workers),
where the training runs' float sums differ. The claims that decide a fusion recipe are asserted
end to end, on corpora built to decide them, in tests/test_crossfit.py: with both branches
informative the fused model beats both by 0.1+ UA, and with a useless branch it is not below the
good one (cross-fitted, choosing the simplest combiner within noise, as the shipped recipe runs).
"""
import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from zoo.cli import build_cli, main
from zoo.data.batch import collate
from zoo.data.synth import generate

ROOT = Path(__file__).resolve().parents[1]
CHANCE = 1 / 7


def _ua(pred, true):
    return float(np.mean([float((pred[true == c] == c).float().mean()) for c in true.unique()]))


def _one_utterance(true) -> float:
    """The most one test utterance can move UA: 1 / (classes x the smallest class's count)."""
    counts = torch.bincount(true)[torch.bincount(true) > 0]
    return 1.0 / (len(counts) * int(counts.min()))


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fusion")
    corpus = generate(tmp / "synth", size=360, seed=1)
    data = ["--config", str(ROOT / "configs/data/synthetic.yaml"),
            "--data.corpus", "zoo.data.corpora.AIHub", "--data.corpus.root", str(corpus),
            "--data.init_args.cache_dir", str(tmp / "cache"), "--data.init_args.max_seconds", "6",
            "--trainer.enable_progress_bar", "false", "--trainer.logger.init_args.save_dir", str(tmp / "runs")]
    audio = data + ["--config", str(ROOT / "configs/model/audio_cnn.yaml"),
                    "--model.init_args.channels", "[16, 32, 32]", "--model.init_args.hidden", "32",
                    "--model.init_args.optimizer.init_args.lr", "0.003",
                    "--trainer.max_epochs", "14", "--trainer.logger.init_args.name", "audio"]
    text = data + ["--config", str(ROOT / "configs/model/text_kobert.yaml"),
                   "--config", str(ROOT / "configs/model/tiny/text_kobert.yaml"),
                   "--trainer.max_epochs", "12", "--trainer.logger.init_args.name", "text"]
    main(["fit", *audio, "--test_after_fit", "true"])
    main(["fit", *text])

    def best(name):
        return str(next((tmp / "runs" / name / "version_0/checkpoints").glob("best-*.ckpt")))
    def second_stage(name, *extra):
        return data + ["--config", str(ROOT / "configs/model/late_fusion.yaml"),
                       "--config", str(ROOT / "configs/model/tiny/late_fusion.yaml"),
                       "--model.init_args.audio_checkpoint", best("audio"),
                       "--model.init_args.text_checkpoint", best("text"),
                       "--model.init_args.freeze_encoders", "true",
                       # decision level with a temperature per branch: four parameters
                       "--model.init_args.fusion", "probs",
                       "--model.init_args.optimizer.init_args.lr", "0.05",
                       "--trainer.logger.init_args.name", name, *extra]
    # the default: fitted on the validation split, whose outputs the branches never trained on
    fusion = second_stage("fusion", "--trainer.max_epochs", "30")
    main(["fit", *fusion])
    # the old way: fitted on the training utterances, whose outputs the branches have memorised
    on_train = second_stage("fusion_on_train", "--model.init_args.fit_on", "train", "--trainer.max_epochs", "10")
    main(["fit", *on_train])
    with open(corpus / "synthetic_meta.csv", encoding="utf-8") as f:
        cue = {r["wav_id"]: r["cue"] for r in csv.DictReader(f)}
    return {"audio": (audio, best("audio")), "text": (text, best("text")),
            "fusion": (fusion, best("fusion")), "fusion_on_train": (on_train, best("fusion_on_train")),
            "cue": cue, "predictions": {}}


def _predict(stages, name):
    """The test split's ids, predicted and true labels of a stage's best checkpoint (once per stage)."""
    if name not in stages["predictions"]:
        args, ckpt = stages[name]
        cli = build_cli(args, run=False)
        preds = cli.trainer.predict(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt)
        ids = [i for p in preds for i in p["ids"]]
        stages["predictions"][name] = (ids, torch.cat([p["probs"] for p in preds]).argmax(1),
                                       torch.cat([p["labels"] for p in preds]))
    return stages["predictions"][name]


def test_audio_run_writes_its_outputs(stages):
    run = Path(stages["audio"][1]).parents[1]
    assert (run / "config.yaml").exists() and (run / "confusion_matrix_test.png").exists()
    assert len(list((run / "checkpoints").glob("best-*.ckpt"))) == 1
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 13  # the latest epoch, not a copy of the best one
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len([r for r in rows if r.get("val/UA")]) == 14  # one validation per epoch
    # --test_after_fit ran the best checkpoint: its test UA is that checkpoint's on the test split
    test = next(r for r in rows if r.get("test/UA"))
    ids, pred, true = _predict(stages, "audio")
    assert float(test["test/UA"]) == pytest.approx(_ua(pred, true), abs=1e-4), test
    assert float(test["test/UA"]) > 2 * CHANCE, test
    # the run names its test set: the fingerprint of the ids it tested, in hparams.yaml and the checkpoint
    import yaml

    from zoo.data.splits import split_fingerprint

    fp = split_fingerprint(ids)
    assert yaml.safe_load((run / "hparams.yaml").read_text())["split_fingerprint"] == fp
    assert last["datamodule_hyper_parameters"]["split_fingerprint"] == fp


def test_stage_two_trains_only_the_fusion_head(stages):
    from zoo.models.loading import load_module

    fusion = load_module(stages["fusion"][1])
    audio, text = load_module(stages["audio"][1]), load_module(stages["text"][1])
    for branch, ref in ((fusion.audio, audio), (fusion.text, text)):
        for k, v in ref.state_dict().items():
            if not k.startswith("head."):
                assert torch.equal(branch.state_dict()[k], v), f"frozen encoder weight {k} changed"
    # the fusion head trained from its initialisation (same seed -> same init)
    torch.manual_seed(0)
    init = build_cli(stages["fusion"][0], run=False).model
    changed = [k for k, v in fusion.fusion.state_dict().items() if not torch.equal(v, init.fusion.state_dict()[k])]
    assert changed, "the fusion head did not train"
    # the tokenizer came with the text checkpoint
    assert fusion.tokenizer.encode("나 어제 헤어졌어") == text.tokenizer.encode("나 어제 헤어졌어")


def test_each_modality_learns_its_cue_and_fusion_uses_the_voice(stages):
    cue = stages["cue"]
    scores = {}
    for name in ("audio", "text", "fusion"):
        ids, pred, true = _predict(stages, name)
        kinds = np.array([cue[i] for i in ids])
        scores[name] = {"all": _ua(pred, true)}
        for k in ("voice", "words"):
            m = torch.from_numpy(kinds == k)
            scores[name][k] = _ua(pred[m], true[m])
    print(scores)
    assert scores["audio"]["voice"] > 2 * CHANCE, scores  # the prosody, not the majority class
    assert scores["text"]["words"] > 2 * CHANCE, scores
    # the fused model learned (well above chance) and, on the voice-cued utterances, keeps the
    # audio branch's cue where the text branch is near chance (by more than two test utterances)
    step = _one_utterance(_predict(stages, "fusion")[2])
    assert scores["fusion"]["all"] > 2 * CHANCE, scores
    assert scores["fusion"]["voice"] > scores["text"]["voice"] + 2 * step, (scores, step)


def test_second_stage_on_held_out_outputs_is_calibrated_where_the_train_fitted_one_is_not(stages):
    """Fitted on the training utterances, the combiner sees branches that look more reliable than
    they are (both fit those utterances): it sharpens them (temperature < 1). On the validation
    split it sees how far each holds on new conversations: both get softened (temperature > 1).

    Not asserted: that the train-fitted mixture scores lower on the test split. On the stable
    seed-0 split it did with two threads (0.313 UA against 0.330) and not with one (0.436 against
    0.394), nor on the split drawn before (0.628 against 0.601): at 72 test utterances the
    difference is within noise."""
    from zoo.models.loading import load_module

    t_train = load_module(stages["fusion_on_train"][1]).fusion.temperatures
    t_val = load_module(stages["fusion"][1]).fusion.temperatures
    assert (t_train < 1).all() and (t_val > 1).all(), (t_train, t_val)
    print({"temperatures": {"train": t_train.tolist(), "val": t_val.tolist()}})
    ua = {name: _ua(*_predict(stages, name)[1:]) for name in ("audio", "text", "fusion", "fusion_on_train")}
    print(ua)
    assert ua["fusion"] > 2 * CHANCE, ua


def test_late_fusion_predicts_without_a_transcript(stages):
    from zoo.models.loading import load_module

    fusion = load_module(stages["fusion"][1]).eval()
    g = torch.Generator().manual_seed(0)
    wav = torch.randn(16000, generator=g) * 0.1
    with_text = collate([{"id": "a", "label": -1, "audio": wav, "text": "오늘 정말 기분이 좋아",
                          "input_ids": fusion.tokenizer.encode("오늘 정말 기분이 좋아")}])
    no_text = collate([{"id": "a", "label": -1, "audio": wav, "text": "",
                        "input_ids": fusion.tokenizer.encode("")}])
    audio_only = collate([{"id": "a", "label": -1, "audio": wav}])
    with torch.no_grad():
        p1 = fusion(with_text).softmax(-1)
        p2 = fusion(no_text).softmax(-1)
        p3 = fusion(audio_only).softmax(-1)
    assert torch.allclose(p2, p3)  # an empty transcript is a missing transcript
    assert torch.isfinite(p3).all() and torch.allclose(p3.sum(), torch.tensor(1.0))
    assert not torch.allclose(p1, p3)  # the transcript matters when given
