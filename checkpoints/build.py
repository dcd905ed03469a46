"""Train, evaluate and register the shipped checkpoints (one per model family on the synthetic
corpus, and the real-speech EmoDB models).

    python checkpoints/build.py                 # all of them, in dependency order (~20 min, 2 CPUs)
    python checkpoints/build.py --only egemaps-synth
    python checkpoints/build.py --only emodb-compare emodb-egemaps   # needs data/emodb.csv (docs/results.md)
    python checkpoints/build.py --only korean-tts-compare korean-tts-tfidf korean-tts-fusion   # needs data/korean_tts

Each recipe is one `python -m zoo fit ... --test_after_fit true` on the embedded synthetic corpus
(configs/data/synthetic.yaml: 600 utterances, seed 0, conversations never cross splits). The best
checkpoint by val/UA (val/CCC_mean for a dimension-only model) is slimmed (optimizer state and
loop state dropped: it is for inference), copied here as <name>.ckpt, and registered in
registry.yaml with its test WA / UA / macro-F1 (CCC per dimension and their mean) read from the
run's metrics.csv, its size, sha256 and the exact command; a model card is written to
cards/<name>.md.

The real-speech recipes (``final``) train on every speaker of their corpus for a fixed number
of epochs (no validation or test split: the recipe and its epoch count were chosen by the
leave-one-speaker-out study), and their metrics are that study's cross-validated means, read from
its results file in docs/ablations/.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

DATA = ["--config", "configs/data/synthetic.yaml", "--trainer.enable_progress_bar", "false"]

SYNTH_USE = ("Trying the zoo: the docs, tests, `zoo.load`, `python -m zoo infer` and the demo run on it "
             "with no download. A starting point for the recipe, not a model of real emotional speech.")

RECIPES: list[dict] = [
    dict(name="audio-cnn-synth",
         description="Log-mel CNN (AudioCNN) trained on the synthetic corpus: audio only.",
         args=["--config", "configs/model/audio_cnn.yaml", "--model.init_args.channels", "[16, 32, 32]",
               "--model.init_args.hidden", "32", "--model.init_args.dropout", "0.2",
               "--model.init_args.optimizer.init_args.lr", "0.003", "--trainer.max_epochs", "15"]),
    dict(name="text-bert-synth",
         description="A small BERT trained from scratch, with a sentencepiece vocabulary learned from the "
                     "training transcripts (TextBERT, pretrained: null): text only.",
         args=["--config", "configs/model/text_kobert.yaml", "--config", "configs/model/tiny/text_kobert.yaml",
               "--trainer.max_epochs", "12"]),
    dict(name="late-fusion-synth",
         description="Late fusion of audio-cnn-synth and text-bert-synth (both frozen; stage 2 trains only "
                     "the two decision weights). Predicts from audio alone when no transcript is given.",
         args=["--config", "configs/model/late_fusion.yaml", "--config", "configs/model/tiny/late_fusion.yaml",
               "--model.init_args.audio_checkpoint", "checkpoints/audio-cnn-synth.ckpt",
               "--model.init_args.text_checkpoint", "checkpoints/text-bert-synth.ckpt",
               "--model.init_args.freeze_encoders", "true", "--model.init_args.fusion", "probs",
               "--model.init_args.optimizer.init_args.lr", "0.01", "--trainer.max_epochs", "4"],
         needs=["audio-cnn-synth", "text-bert-synth"]),
    dict(name="early-fusion-synth",
         description="Early fusion: log-mel frames and token states in one joint transformer (EarlyFusion, "
                     "text encoder from scratch).",
         args=["--config", "configs/model/early_fusion.yaml", "--config", "configs/model/tiny/early_fusion.yaml",
               "--trainer.max_epochs", "12"]),
    dict(name="wav2vec2-synth",
         description="A tiny wav2vec 2.0 encoder (2 layers, 32 wide, randomly initialised, no self-supervised "
                     "pre-training) fine-tuned on the synthetic corpus; exports to Hugging Face "
                     "Wav2Vec2ForSequenceClassification.",
         args=["--config", "configs/model/wav2vec2.yaml", "--config", "configs/model/tiny/wav2vec2.yaml",
               "--model.init_args.spec_augment", "false",
               "--model.init_args.optimizer.init_args.lr", "0.001", "--trainer.max_epochs", "10"]),
    dict(name="wav2vec2-lora-synth",
         description="LoRA (peft, rank 4 on the attention q/v projections) on the encoder of wav2vec2-synth, "
                     "exported to a Hugging Face folder as a stand-in for a hub model: only the adapters "
                     "and a new head train, and the checkpoint loads offline with the adapters inside. "
                     "Shows the LoRA path end to end; the encoder is tiny and was never self-supervised.",
         prepare=["export", "--model", "checkpoints/wav2vec2-synth.ckpt", "--format", "hf",
                  "--out", "runs/build/wav2vec2-synth-hf"],
         args=["--config", "configs/model/xlsr.yaml",
               "--model.init_args.pretrained", "runs/build/wav2vec2-synth-hf",
               "--model.init_args.lora_rank", "4", "--model.init_args.lora_alpha", "8",
               "--model.init_args.encoder_lr", "0.003", "--model.init_args.embedding_cache", "false",
               "--model.init_args.spec_augment", "false",
               "--model.init_args.optimizer.init_args.lr", "0.003", "--trainer.max_epochs", "6"],
         needs=["wav2vec2-synth"]),
    dict(name="egemaps-synth",
         description="eGeMAPS v02 functionals (openSMILE) -> MLP, globally standardised: audio only.",
         args=["--config", "configs/model/egemaps_mlp.yaml", "--trainer.max_epochs", "40"]),
    dict(name="audio-cnn-dims-synth",
         description="Log-mel CNN (AudioCNN) predicting arousal and valence (targets: [arousal, valence], "
                     "1 - CCC loss each) from audio, trained on the synthetic corpus's dimensional ratings.",
         args=["--config", "configs/model/audio_cnn.yaml", "--model.init_args.channels", "[16, 32, 32]",
               "--model.init_args.hidden", "32", "--model.init_args.targets", "[arousal, valence]",
               "--model.init_args.optimizer.init_args.lr", "0.003", "--trainer.max_epochs", "10"]),
]


EMODB_USE = (
    "Recognising the seven EmoDB emotions in **acted German** speech, as a real-speech baseline and "
    "a starting point. Best with speaker adaptation: give it many unlabelled clips of the same "
    "speaker covering several emotions (`model.adapt(files)`, `python -m zoo infer --adapt`); on a "
    "voice it has never heard and without adaptation it uses its training speakers' statistics, "
    "which costs accuracy (the card's table). Acted, read sentences by 10 actors in a studio: "
    "expect much lower accuracy on spontaneous, noisy or non-German speech.")
EMODB_LICENSE = ("weights: Apache-2.0; training data: Berlin Emotional Speech Database (Burkhardt et al., "
                 "2005), distributed free of charge for research by TU Berlin; check its terms before "
                 "commercial use")
# every speaker trains: the configs' pinned test and validation speakers emptied
EMODB_FINAL = ["--data.init_args.split.test_speakers", "[]", "--data.init_args.split.val_speakers", "[]",
               "--data.init_args.split.val_fraction", "0", "--data.init_args.split.test_fraction", "0"]

#: real-speech recipes: the LOSO study's cell, its results file, and the card's extra section
EMODB_RECIPES: list[dict] = [
    dict(name="emodb-compare",
         description="ComParE 2016 functionals (openSMILE, 6,373 per clip) standardised per speaker -> "
                     "linear classifier, trained on all ten EmoDB speakers (acted German): the best "
                     "from-scratch recipe of the zoo's leave-one-speaker-out study.",
         config="configs/emodb_compare.yaml", cell="compare_linear", epochs=40,
         args=[]),
    dict(name="emodb-egemaps",
         description="eGeMAPS v02 functionals (openSMILE, 88 per clip) standardised per speaker -> MLP "
                     "128-64, trained on all ten EmoDB speakers (acted German): the compact, "
                     "interpretable-feature baseline.",
         config="configs/emodb_egemaps.yaml", cell="egemaps_mlp", epochs=74,
         args=[]),
]
for _r in EMODB_RECIPES:
    _r.update(final=True, data=["--config", _r["config"], "--trainer.enable_progress_bar", "false", *EMODB_FINAL],
              results="docs/ablations/emodb_loso_results.csv",
              corpus="Berlin Emotional Speech Database (EmoDB): 535 utterances, 10 actors (5 female, 5 male), "
                     "10 German sentences, 7 emotions, acted; 16 kHz",
              split="all 10 speakers, fixed epoch count (no validation or test split); metrics: "
                    "leave-one-speaker-out cross-validation of the same recipe (10 folds, each actor tested "
                    "once; 3 of the other 9 validate), mean over folds, test speaker adapted on all of its "
                    "clips (configs/ablation/emodb_loso.yaml)",
              license=EMODB_LICENSE, intended_use=EMODB_USE, caveat="emodb")
RECIPES += EMODB_RECIPES

KOREAN_USE = (
    "Recognising four emotions (neutral, happy, sad, angry) in **Korean** speech, the zoo's first model "
    "of real Korean voices: a baseline and a starting point, for research. Best with speaker "
    "adaptation (`model.adapt(files)`, `python -m zoo infer --adapt`: many unlabelled clips of the "
    "same speaker, several emotions). Trained on 15 speakers reading scripts in a studio: expect "
    "much lower accuracy on conversation (the card's last section).")
KOREAN_LICENSE = ("weights: trained on data for research use only, no commercial use (the corpus's terms: "
                  "Korean emotional speech corpus of Selvas AI / KAIST, emotiontts_open_db, public 5% sample)")
KOREAN_DATA = ["--config", "configs/data/korean_tts.yaml", "--config", "configs/trainer/cpu.yaml",
               "--trainer.enable_progress_bar", "false",
               "--data.init_args.corpus.init_args.root", "data/korean_tts",  # your copy of the sample
               "--data.init_args.split.mode", "group", "--data.init_args.split.group_by", "speaker",
               "--data.init_args.split.val_fraction", "0", "--data.init_args.split.test_fraction", "0"]
KOREAN_COMPARE = ["--config", "configs/model/egemaps_mlp.yaml", "--model.init_args.feature_set", "ComParE_2016",
                  "--model.init_args.hidden", "[]", "--model.init_args.normalize", "speaker",
                  "--model.init_args.class_weights", "balanced", "--model.init_args.lr_schedule", "constant",
                  "--model.init_args.warmup_steps", "0", "--model.init_args.optimizer.init_args.lr", "0.001",
                  "--model.init_args.optimizer.init_args.weight_decay", "0.01"]
KOREAN_SPLIT = ("all 15 speakers, fixed epoch count (no validation or test split: the median best epoch of the "
                "folds); metrics: the same recipe over five folds of three held-out speakers each (two more "
                "validate), each speaker tested once, mean over folds (configs/ablation/korean_bimodal.yaml)")
#: the Korean recipes (configs/ablation/korean_bimodal.yaml's cells, final): the epochs are the
#: median best epoch of the five folds (compare: best at epochs 16, 11, 3, 1, 0 -> 4 epochs; tfidf:
#: 0 in every fold -> 1); the text branch is trained for the fusion only (not registered: alone it
#: recognises this corpus's scripts, docs/results.md)
KOREAN_RECIPES: list[dict] = [
    dict(name="korean-tts-compare", cell="compare", epochs=4, args=KOREAN_COMPARE,
         description="ComParE 2016 functionals (openSMILE, 6,373 per clip) standardised per speaker -> linear "
                     "classifier, trained on all 15 speakers of the Korean emotional speech sample (read "
                     "speech, 4 emotions): audio only, the audio branch of korean-tts-fusion."),
    dict(name="korean-tts-tfidf", cell="tfidf", epochs=1, register=False,
         args=["--config", "configs/model/text_tfidf.yaml", "--model.init_args.analyzer", "char_wb"],
         description="Character 1-3-gram TF-IDF -> linear classifier on the transcripts: the text branch of "
                     "korean-tts-fusion (not registered on its own)."),
    dict(name="korean-tts-fusion", cell="fusion", epochs=1, needs=["korean-tts-compare", "korean-tts-tfidf"],
         args=["--config", "configs/model/late_fusion.yaml", "--model.init_args.fusion", "probs",
               "--model.init_args.cross_fit", "5",
               "--model.init_args.audio_checkpoint", "{run:korean-tts-compare}/checkpoints/last.ckpt",
               "--model.init_args.text_checkpoint", "{run:korean-tts-tfidf}/checkpoints/last.ckpt"],
         description="Late fusion of korean-tts-compare (audio) and a character TF-IDF text branch, trained on "
                     "all 15 speakers of the Korean emotional speech sample (read speech, 4 emotions); the "
                     "second stage was picked on out-of-fold outputs of both branches over 5 folds of the 15 "
                     "speakers (cross_fit). Predicts from audio alone when no transcript is given."),
]
for _r in KOREAN_RECIPES:
    _r.update(final=True, data=KOREAN_DATA, results="docs/ablations/korean_bimodal_results.csv",
              corpus="Korean emotional speech sample (emotiontts_open_db, Selvas AI / KAIST; the public 5%): 300 "
                     "read utterances, 15 speakers (7 female, 8 male), 4 emotions (neutral, happy, sad, angry; 75 "
                     "each), studio recordings at 22,050 Hz",
              split=KOREAN_SPLIT, license=KOREAN_LICENSE, intended_use=KOREAN_USE, caveat="korean")
RECIPES += KOREAN_RECIPES

KOREAN_CAVEAT = (
    "## Real speech, Korean, read\n\n"
    "Trained on the public 5% sample of a Korean emotional speech corpus built for speech synthesis: "
    "15 speakers reading scripts in four emotions in a studio. Ten read emotion-specific scripts, five "
    "read the same neutral sentences in every emotion. The metrics above are the mean over five folds "
    "of three speakers never used in training or model selection (docs/results.md). They say how the "
    "recipe does on a new *reader* of this corpus.\n\n"
    "**On conversation, expect much lower accuracy.** Conversation is not read speech: its cues are "
    "weaker and mixed, its sentences are new. The text branch here learned the corpus's scripts (every "
    "test sentence was also a training sentence), so on unseen sentences it is weaker than these "
    "numbers, and on real dialogue (KEMDy19) the same recipes scored far lower (ComParE 0.29, TF-IDF 0.55 "
    "UA over 7 classes). Adapt to the speaker (`model.adapt(files)`), and measure on your own data before "
    "relying on it.\n\n"
    "Licence of the training data: research use only, no commercial use (the corpus's README: "
    "github.com/emotiontts/emotiontts_open_db).")


def _loso_metrics(results: Path, cell: str) -> dict[str, float]:
    """The cross-validated means (over folds) of one cell of an ablation's results.csv."""
    rows = [r for r in csv.DictReader(open(ROOT / results, encoding="utf-8")) if r.get("cell") == cell]
    if not rows:
        raise SystemExit(f"{results} has no runs of cell {cell!r}: run the LOSO study first (docs/results.md)")
    keys = ("test/WA", "test/UA", "test/macro_F1")
    return {k: round(sum(float(r[k]) for r in rows) / len(rows), 4) for k in keys}


def _metrics(run_dir: Path, model) -> dict[str, float]:
    rows = list(csv.DictReader(open(run_dir / "metrics.csv", encoding="utf-8")))
    out = {}
    keys = ("test/WA", "test/UA", "test/macro_F1") if model.predicts_categories else ()
    keys += tuple(f"test/CCC_{d}" for d in model.dim_names) + (("test/CCC_mean",) if model.dim_names else ())
    for key in keys:
        vals = [r[key] for r in rows if r.get(key)]
        if not vals:
            raise SystemExit(f"{run_dir}/metrics.csv has no {key}: did the test stage run?")
        out[key] = round(float(vals[-1]), 4)
    return out


def slim(src: Path, dst: Path) -> None:
    """Keep what inference needs: weights, init args, class path, tokenizer."""
    import torch

    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    keep = {k: ckpt[k] for k in ("state_dict", "hyper_parameters", "hparams_name", "pytorch-lightning_version",
                                  "epoch", "global_step", "zoo_tokenizer") if k in ckpt}
    buf = io.BytesIO()
    torch.save(keep, buf)
    dst.write_bytes(buf.getvalue())


def _last_run(runs: Path, name: str) -> Path:
    found = sorted((runs / name).glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    if not found:
        raise SystemExit(f"no run of {name} under {runs}: build it first (--only {name})")
    return found[-1]


def _resolve(args: list[str], runs: Path) -> list[str]:
    """``{run:NAME}`` in an argument: the latest run folder of recipe NAME (its config.yaml is the
    recipe a cross-fitted fusion reruns per fold)."""
    import re

    def where(m) -> str:
        d = _last_run(runs, m.group(1))
        return str(d.relative_to(ROOT)) if d.is_relative_to(ROOT) else str(d)
    return [re.sub(r"\{run:([\w-]+)\}", where, a) for a in args]


def _fingerprint(run_dir: Path) -> str:
    """The run's split fingerprint (hash of its sorted test ids, from hparams.yaml), so a card says
    which test set its metrics come from."""
    import yaml

    hp = run_dir / "hparams.yaml"
    fp = (yaml.safe_load(hp.read_text(encoding="utf-8")) or {}).get("split_fingerprint") if hp.is_file() else None
    return f"; split fingerprint {fp}" if fp else ""


def build(recipe: dict, runs: Path) -> dict | None:
    from zoo.inference.registry import sha256_of
    from zoo.models.loading import load_module, module_spec

    name = recipe["name"]
    for dep in recipe.get("needs", []):
        dep_recipe = next(r for r in RECIPES if r["name"] == dep)
        if dep_recipe.get("register", True) and not (HERE / f"{dep}.ckpt").is_file():
            raise SystemExit(f"{name} needs checkpoints/{dep}.ckpt: build it first")
    if recipe.get("prepare"):  # e.g. export a shipped checkpoint as the pretrained model of this one
        subprocess.run([sys.executable, "-m", "zoo", *recipe["prepare"]], cwd=ROOT, check=True)
    final = recipe.get("final", False)
    epochs = ["--trainer.max_epochs", str(recipe["epochs"])] if final else []
    args = ["fit", *recipe.get("data", DATA), *_resolve(recipe["args"], runs), *epochs,
            "--test_after_fit", "false" if final else "true",
            "--trainer.logger.init_args.save_dir", str(runs), "--trainer.logger.init_args.name", name]
    cmd = [sys.executable, "-m", "zoo", *args]
    print(f"[build] {name}: {shlex.join(['python', '-m', 'zoo', *args])}", flush=True)
    t0 = time.time()
    subprocess.run(cmd, cwd=ROOT, check=True, env={**os.environ, "WANDB_MODE": "disabled"})
    run_dir = _last_run(runs, name)
    if not recipe.get("register", True):  # a part of another recipe (its run folder is what is used)
        print(f"[build] {name}: {run_dir} (not registered) in {time.time() - t0:.0f} s", flush=True)
        return None
    best = run_dir / "checkpoints" / "last.ckpt" if final else next((run_dir / "checkpoints").glob("best-*.ckpt"))
    dst = HERE / f"{name}.ckpt"
    slim(best, dst)
    model = load_module(str(dst))
    spec = module_spec(model)
    entry = {
        "name": name,
        "model": spec["class_path"],
        "description": recipe["description"],
        "inputs": list(model.inputs),
        "sample_rate": int(model.sample_rate),
        "class_names": list(model.class_names) if model.predicts_categories else [],
        **({"dims": list(model.dim_names)} if model.dim_names else {}),
        "config": spec["init_args"],
        "corpus": recipe.get("corpus", "synthetic Korean corpus (python -m zoo synth; configs/data/synthetic.yaml: "
                                       "600 utterances, corpus_seed 0)"),
        "split": recipe.get("split", "group split by conversation, seed 0: 65% train / 15% val / 20% test; best "
                                     "epoch by " + model.monitor + _fingerprint(run_dir)),
        "metrics": _loso_metrics(recipe["results"], recipe["cell"]) if final else _metrics(run_dir, model),
        "params": sum(p.numel() for p in model.parameters()),
        "file": dst.name,
        "size": dst.stat().st_size,
        "sha256": sha256_of(dst),
        "license": recipe.get("license", "Apache-2.0 (weights and synthetic training data, both made by this project)"),
        "intended_use": recipe.get("intended_use", SYNTH_USE),
        "card": f"cards/{name}.md",
        "command": "python -m zoo " + shlex.join(args[:-4]) + "  # then: python checkpoints/build.py",
    }
    print(f"[build] {name}: {entry['metrics']} in {time.time() - t0:.0f} s, {entry['size'] / 1e6:.2f} MB", flush=True)
    return entry


def write_registry(entries: dict[str, dict]) -> None:
    import yaml

    from zoo.inference.cards import EMODB_CAVEAT, SYNTHETIC_CAVEAT, card_markdown

    (HERE / "cards").mkdir(exist_ok=True)
    ordered = [entries[r["name"]] for r in RECIPES if r["name"] in entries]
    ordered += [e for n, e in entries.items() if n not in {r["name"] for r in RECIPES}]
    for e in ordered:
        recipe = next((r for r in RECIPES if r["name"] == e["name"]), None)
        if e.get("card") and recipe is not None:
            caveat = {"emodb": EMODB_CAVEAT, "korean": KOREAN_CAVEAT}.get(recipe.get("caveat"), SYNTHETIC_CAVEAT)
            s2 = (e.get("config") or {}).get("stage2")  # a cross-fitted second stage: its pick and why
            stage2 = ("## Second stage\n\nCross-fitted on out-of-fold outputs of both branches; picked "
                      f"**{s2['choice']}**. {s2['reason']}\n\n") if s2 else ""
            (HERE / e["card"]).write_text(card_markdown(e) + "\n" + stage2 + caveat + "\n", encoding="utf-8")
    header = ("# The pretrained checkpoint registry (zoo.list_checkpoints(), python -m zoo checkpoints).\n"
              "# Shipped entries are written by `python checkpoints/build.py`; see docs/checkpoints.md to add one\n"
              "# (an entry may give `url:` instead of `file:`; the download is checked against sha256).\n")
    (HERE / "registry.yaml").write_text(
        header + yaml.safe_dump({"checkpoints": ordered}, sort_keys=False, allow_unicode=True, width=110),
        encoding="utf-8")


def main() -> None:
    import yaml

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="recipe names to (re)build; the others keep their entries")
    ap.add_argument("--runs", default="runs/checkpoints", help="where the training runs go")
    a = ap.parse_args()
    names = [r["name"] for r in RECIPES]
    unknown = set(a.only or []) - set(names)
    if unknown:
        raise SystemExit(f"unknown recipe(s) {sorted(unknown)}; known: {names}")
    reg = HERE / "registry.yaml"
    entries = {e["name"]: e for e in (yaml.safe_load(reg.read_text(encoding="utf-8")) or {}).get("checkpoints", [])} \
        if reg.is_file() else {}
    for r in RECIPES:
        if a.only and r["name"] not in a.only:
            continue
        entry = build(r, (ROOT / a.runs).resolve())
        if entry is not None:
            entries[r["name"]] = entry
            write_registry(entries)  # after each: a failure later keeps what was built


if __name__ == "__main__":
    main()
