"""The cross-fitted second stage of late fusion (stacking on out-of-fold branch outputs).

Unit level: the candidates and the one-standard-error pick on out-of-fold outputs whose
information is known. End to end: a generated bimodal corpus (pitch in the voice, keywords in
the transcripts, on known halves of the utterances) trained through ``python -m zoo fit``: an
eGeMAPS branch, a TF-IDF branch and the cross-fitted fusion of their checkpoints. When the text
carries nothing, the fused model must not fall below the audio branch; when each modality carries
the emotion on its own half, it must be above both.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from zoo.crossfit import group_folds
from zoo.errors import ZooUserError
from zoo.models.stage2 import CANDIDATES, combine, fit_params, select, unweighted_accuracy

ROOT = Path(__file__).resolve().parents[1]
C = 4


# -- unit level: the pick on known out-of-fold outputs ---------------------------------------------
def _outputs(n=400, k=5, seed=0, audio_on=None, text_on=None, strength=4.0):
    """Out-of-fold logits: a branch holds the label (with noise) on the rows of its mask, else noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, C, (n,), generator=g)
    folds = torch.arange(n) % k

    def branch(on):
        x = torch.randn(n, C, generator=g)
        x[torch.arange(n)[on], labels[on]] += strength
        return x
    all_rows = torch.ones(n, dtype=torch.bool)
    la = branch(all_rows if audio_on is None else audio_on)
    lt = branch(all_rows if text_on is None else text_on)
    return la, lt, labels, folds


def test_a_useless_branch_is_left_out():
    n = 400
    la, lt, labels, folds = _outputs(n, text_on=torch.zeros(n, dtype=torch.bool), strength=2.0)
    present = torch.ones(n, dtype=torch.bool)
    sel = select(la, lt, present, labels, folds, C)
    audio = sel.report["candidates"]["audio"]["ua"]
    assert sel.report["candidates"]["text"]["ua"] < 0.35 < audio
    assert sel.choice == "audio", sel.reason
    assert "Picked audio" in sel.reason and sel.params.log_t[1] > 1  # the useless branch is flattened too


def test_complementary_branches_are_fused():
    n = 400
    half = torch.arange(n) % 2 == 0
    la, lt, labels, folds = _outputs(n, audio_on=half, text_on=~half)
    sel = select(la, lt, torch.ones(n, dtype=torch.bool), labels, folds, C, stacker_min_per_class=10)
    cands = sel.report["candidates"]
    assert sel.choice in ("average", "weights", "stacker"), sel.reason
    assert cands[sel.choice]["ua"] > max(cands["audio"]["ua"], cands["text"]["ua"]) + 0.2
    assert set(cands) == set(CANDIDATES)  # enough rows per class: the stacker was scored too


def test_within_noise_the_simpler_wins_and_a_forced_choice_is_kept():
    n = 300
    la, _, labels, folds = _outputs(n, strength=2.0)
    present = torch.ones(n, dtype=torch.bool)
    # two identical branches: fusing adds nothing, so a branch alone is picked
    sel = select(la, la.clone(), present, labels, folds, C, stacker_min_per_class=100)
    assert sel.choice in ("audio", "text"), sel.reason
    assert "stacker" not in sel.report["candidates"]  # about 75 rows per class: too few for it here
    forced = select(la, la.clone(), present, labels, folds, C, choice="weights")
    assert forced.choice == "weights" and "was asked for" in forced.reason
    with pytest.raises(ZooUserError, match="stacker_min_per_class"):
        select(la, la, present, labels, folds, C, choice="stacker", stacker_min_per_class=100)


def test_rows_without_a_transcript_take_the_audio_branch():
    la, lt, labels, _ = _outputs(40)
    present = torch.arange(40) < 20
    p = fit_params("average", la, lt, present, labels, C)
    out = combine("average", la, lt, present, p.log_t, p.weights)
    audio = combine("audio", la, lt, present, p.log_t, p.weights)
    assert torch.allclose(out[~present], audio[~present]) and not torch.allclose(out[present], audio[present])
    assert torch.allclose(out.exp().sum(-1), torch.ones(40), atol=1e-5)  # log-probabilities
    # no transcript anywhere: the audio branch is the only candidate
    sel = select(la, lt, torch.zeros(40, dtype=torch.bool), labels, torch.arange(40) % 4, C)
    assert list(sel.report["candidates"]) == ["audio"] and sel.choice == "audio"


def test_learned_weights_lean_towards_the_better_branch():
    n = 400
    la, lt, labels, _ = _outputs(n, text_on=torch.arange(n) % 4 == 0, strength=3.0)
    p = fit_params("weights", la, lt, torch.ones(n, dtype=torch.bool), labels, C)
    w = p.weights.softmax(0)
    assert w[0] > 0.6, w
    assert unweighted_accuracy(torch.tensor([0, 1, 1, 1]), torch.tensor([0, 1, 1, 0])) == pytest.approx(0.75)


def test_group_folds_keep_groups_whole_and_balanced():
    keys = [f"s{i % 7}" for i in range(70)] + ["big"] * 30
    folds = group_folds(keys, 4)
    by_key = {}
    for k, f in zip(keys, folds):
        by_key.setdefault(k, set()).add(f)
    assert all(len(v) == 1 for v in by_key.values())  # a speaker is in one fold
    sizes = np.bincount(folds, minlength=4)
    assert sizes.max() - sizes.min() <= 10 and sizes[by_key["big"].pop()] == 30
    assert group_folds(keys, 4) == folds  # the keys alone decide


# -- end to end: a generated bimodal corpus through the CLI -----------------------------------------
CLASSES = ["angry", "happy", "neutral", "sad"]
PITCH = {"angry": 320.0, "happy": 240.0, "neutral": 165.0, "sad": 115.0}
WORDS = {"angry": "정말 화가 나", "happy": "너무 기뻐서 좋아", "neutral": "보통 평범한 날", "sad": "너무 슬퍼서 울었어"}
FILLER = ["오늘 점심을 먹었어", "내일 회의가 있어", "버스를 타고 왔어", "책을 조금 읽었어", "전화를 했어",
          "창문을 열었어", "길을 걸었어", "물을 마셨어"]
SPEAKERS = [f"s{i:02d}" for i in range(12)]
SPLIT = {"mode": "group", "group_by": "speaker", "test_speakers": SPEAKERS[:3], "val_speakers": SPEAKERS[3:5]}


def _tone(f0: float, rng, seconds: float = 0.4, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 5))
    x = 0.3 * x / np.abs(x).max() * (0.7 + 0.3 * np.sin(2 * np.pi * 3 * t))
    return (x + rng.normal(scale=0.003, size=t.shape)).astype(np.float32)


def bimodal_corpus(root: Path, text_informative: bool, per_speaker: int = 12, seed: int = 0) -> Path:
    """Each class in a known place: with ``text_informative``, half of each speaker's utterances
    carry the emotion only in the voice (class pitch, filler words) and half only in the words
    (class keywords, a pitch that says nothing); without it every utterance carries it in the
    voice (with more pitch jitter) and the transcripts are filler."""
    rng = np.random.default_rng(seed)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    rows = []
    for s, spk in enumerate(SPEAKERS):
        voice = 0.9 + 0.2 * s / len(SPEAKERS)  # each speaker a little higher
        for j in range(per_speaker):
            label = CLASSES[j % len(CLASSES)]
            words_cued = text_informative and (j // len(CLASSES)) % 2 == 1
            if words_cued:
                f0 = float(rng.uniform(115, 320))
                text = f"{rng.choice(FILLER)} {WORDS[label]}"
            else:
                f0 = PITCH[label] * voice * float(rng.normal(1.0, 0.03 if text_informative else 0.12))
                text = f"{rng.choice(FILLER)} {rng.choice(FILLER)}"
            path = root / "wav" / f"{spk}_{j:02d}.wav"
            sf.write(path, _tone(f0, rng), 16000, subtype="PCM_16")
            rows.append({"path": f"wav/{path.name}", "label": label, "text": text, "speaker": spk})
    with open(root / "corpus.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root / "corpus.csv"


def _data_args(manifest: Path, cache: Path) -> list[str]:
    return ["--data", "zoo.data.EmotionDataModule", "--data.init_args.corpus", "zoo.data.corpora.Manifest",
            "--data.init_args.corpus.init_args.path", str(manifest),
            "--data.init_args.split", json.dumps(SPLIT), "--data.init_args.batch_size", "16",
            "--data.init_args.cache_dir", str(cache), "--trainer.accelerator", "cpu",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--checkpoint.filename", "best", "--test_after_fit", "true"]


def _fit(run, out: Path, *args) -> dict:
    r = run("fit", *args, "--trainer.default_root_dir", str(out), "--trainer.logger.init_args.save_dir", str(out),
            cwd=out.parent)
    assert r.returncode == 0, r.stderr[-4000:]
    run_dir = out / "zoo" / "version_0"
    metrics = {}
    with open(run_dir / "metrics.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            metrics.update({k: float(v) for k, v in row.items() if k.startswith("test/") and v})
    return {"dir": run_dir, "ckpt": run_dir / "checkpoints" / "best.ckpt", "test": metrics, "log": r.stderr}


def _run_in_process(*args, cwd: Path):
    """``python -m zoo ARGS`` in this process (the conftest ``run`` fixture is per test; these runs
    are shared by the module's tests), its zoo log captured."""
    import contextlib
    import io
    import logging
    import os

    from conftest import Result
    from zoo.cli import main

    old, err = os.getcwd(), io.StringIO()
    handler = logging.StreamHandler(err)
    logging.getLogger("zoo").addHandler(handler)
    code = 0
    try:
        os.chdir(cwd)
        with contextlib.redirect_stderr(err):
            main(list(args))
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        logging.getLogger("zoo").removeHandler(handler)
        os.chdir(old)
    return Result(code, "", err.getvalue())


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory):
    """Per corpus (text informative or not): the audio branch, the text branch and the fusion."""
    run = _run_in_process

    out = {}
    for name, informative in (("both", True), ("audio_only", False)):
        root = tmp_path_factory.mktemp(name)
        manifest = bimodal_corpus(root / "corpus", text_informative=informative)
        data = _data_args(manifest, root / "cache")
        audio = _fit(run, root / "audio", *data, "--config", str(ROOT / "configs/model/egemaps_mlp.yaml"),
                     "--model.init_args.hidden", "[]", "--model.init_args.normalize", "speaker",
                     "--model.init_args.optimizer.init_args.lr", "0.05", "--trainer.max_epochs", "20")
        text = _fit(run, root / "text", *data, "--config", str(ROOT / "configs/model/text_tfidf.yaml"),
                    "--trainer.max_epochs", "30")
        fused = _fit(run, root / "fusion", *data, "--config", str(ROOT / "configs/model/late_fusion.yaml"),
                     "--model.init_args.fusion", "probs", "--model.init_args.audio_checkpoint", str(audio["ckpt"]),
                     "--model.init_args.text_checkpoint", str(text["ckpt"]),
                     "--model.init_args.cross_fit", "3", "--model.init_args.stacker_min_per_class", "1000")
        out[name] = {"audio": audio, "text": text, "fusion": fused}
    return out


def test_with_a_useless_text_branch_the_fused_model_is_not_below_the_audio_branch(scenarios):
    s = scenarios["audio_only"]
    ua = {k: s[k]["test"]["test/UA"] for k in s}
    print("text carries nothing:", ua)
    assert ua["text"] < 0.45 and ua["audio"] > 0.6  # the scenario: one branch useless
    assert ua["fusion"] >= ua["audio"], ua


def test_with_both_branches_informative_the_fused_model_is_above_both(scenarios):
    s = scenarios["both"]
    ua = {k: s[k]["test"]["test/UA"] for k in s}
    print("each modality on its own half:", ua)
    assert ua["fusion"] > max(ua["audio"], ua["text"]) + 0.1, ua


def test_the_pick_and_its_reason_are_in_the_log_the_checkpoint_and_the_fold_runs(scenarios):
    import zoo

    for name, s in scenarios.items():
        f = s["fusion"]
        assert "cross-fitted second stage: out-of-fold UA over 3 folds of the training split's speakers" in f["log"]
        hp = torch.load(f["ckpt"], map_location="cpu", weights_only=True)["hyper_parameters"]
        assert hp["select"] in CANDIDATES and hp["stage2"]["choice"] == hp["select"]
        assert "Picked " + hp["select"] in hp["stage2"]["reason"] and hp["stage2"]["unit"] == "speakers"
        assert hp["audio_checkpoint"] is None and hp["audio_recipe"] is None  # self-contained
        if name == "both":
            assert hp["select"] in ("average", "weights"), hp["stage2"]["reason"]
        crossfit = f["dir"] / "crossfit"
        for kind in ("audio", "text"):
            for k in range(3):
                fold = crossfit / kind / f"fold{k}"
                assert (fold / "config.yaml").is_file() and (fold / "predictions.jsonl").is_file()
                assert not (fold / "checkpoints").exists()  # deleted once it predicted
        with open(crossfit / "out_of_fold.csv", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 7 * 12 and {r["fold"] for r in rows} == {"0", "1", "2"}
        # every training speaker's outputs come from the one fold that held it out
        assert all(len({r["fold"] for r in rows if r["speaker"] == spk}) == 1 for spk in SPEAKERS[5:])
        # the saved model predicts as it tested, without the recipes or the branch checkpoints
        model = zoo.load(str(f["ckpt"]))
        wav = next((f["dir"].parents[2] / "corpus" / "wav").glob("*.wav"))
        out = model.predict(str(wav), text="너무 슬퍼서 울었어")
        assert abs(sum(out["probs"].values()) - 1) < 1e-4 and model.module.select == hp["select"]


def test_cross_fit_needs_both_checkpoints_and_probs():
    from zoo.models import LateFusion

    with pytest.raises(ZooUserError, match="both branches as checkpoints"):
        LateFusion(class_names=CLASSES, fusion="probs", cross_fit=3,
                   audio_branch={"class_path": "zoo.models.EGeMAPSMLP", "init_args": {"hidden": []}},
                   text_branch={"class_path": "zoo.models.TextTfidf", "init_args": {}})
    with pytest.raises(ZooUserError, match="fusion: probs"):
        LateFusion(class_names=CLASSES, fusion="concat", cross_fit=3)
    with pytest.raises(ZooUserError, match="at least 2 folds"):
        LateFusion(class_names=CLASSES, cross_fit=1)
