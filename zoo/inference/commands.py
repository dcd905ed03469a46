"""``python -m zoo infer | checkpoints | export | demo``: argument parsing and output only; the work
is in ``predictor``, ``registry``, ``export`` and ``demo``, the ``--plot`` figure in ``track_plot``."""
from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from ..errors import ZooUserError
from .track_plot import plot_track

log = logging.getLogger("zoo")


def _model_args(ap: argparse.ArgumentParser, required: bool = True) -> None:
    ap.add_argument("--model", required=required,
                    help="a registry name (python -m zoo checkpoints) or a .ckpt path written by python -m zoo fit")
    ap.add_argument("--registry", default=None, help="registry file (default: checkpoints/registry.yaml or $ZOO_REGISTRY)")
    ap.add_argument("--trust", action="store_true",
                    help="unpickle a checkpoint that holds Python objects beyond weights (only from a source you trust)")


# -- infer -------------------------------------------------------------------------------------------
INFER_EPILOG = """\
examples:
  python -m zoo infer --model audio-cnn-synth a.wav b.wav
  python -m zoo infer --model late-fusion-synth a.wav --text "나 어제 헤어졌어"
  python -m zoo infer --model runs/x/checkpoints/best.ckpt audio_dir/ --transcripts t.csv --out preds.jsonl
  python -m zoo infer --model audio-cnn-synth long.wav --window 4 --hop 2 --plot track.png
  python -m zoo infer --model audio-cnn-synth long.wav --segment vad --plot track.png
"""


def infer_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m zoo infer", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=INFER_EPILOG,
        description="Label audio files with a trained model: per-class probabilities for each file; files "
                    "longer than --max-seconds also get a timestamped track of windows.")
    _model_args(ap)
    ap.add_argument("inputs", nargs="*", help="audio files, folders (searched recursively) or glob patterns; "
                                              "any sample rate and channel count")
    ap.add_argument("--text", nargs="+", default=None,
                    help="transcripts, one per input file in order (text and fusion models)")
    ap.add_argument("--transcripts", default=None,
                    help="CSV with a file column (file, path, wav_id or id: matched by path, name or stem) and a "
                         "text column (text, transcript or 발화문)")
    ap.add_argument("--asr", default=None,
                    help="transcribe files that have no transcript with this transformers "
                         "automatic-speech-recognition model (hub id or local dir, e.g. openai/whisper-small)")
    ap.add_argument("--out", default=None, help="write results here (.jsonl or .csv); default: JSON lines on stdout")
    ap.add_argument("--max-seconds", type=float, default=10.0, help="longer files are windowed (default 10)")
    ap.add_argument("--window", type=float, default=4.0, help="window length in seconds for long files (default 4)")
    ap.add_argument("--hop", type=float, default=2.0, help="hop between windows in seconds (default 2)")
    ap.add_argument("--segment", choices=["windows", "vad"], default="windows",
                    help="windows (default): files longer than --max-seconds are cut into fixed windows, "
                         "silence included; vad: every file is cut into speech segments by the voice "
                         "activity detector (Silero VAD) and each segment is labelled; silence is not "
                         "labelled, and a file without speech says so (docs/live.md)")
    from ..live.segment import add_vad_arguments

    add_vad_arguments(ap)
    ap.add_argument("--plot", default=None,
                    help="draw the track of each windowed or segmented file: a .png path (one file) or a folder")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--adapt", action="store_true",
                    help="the inputs are all ONE speaker: standardise by their own statistics (models "
                         "trained with normalize: speaker, e.g. the EmoDB checkpoints; needs >= 2 files)")
    ap.add_argument("--skip-errors", action="store_true",
                    help="exit 0 even when some inputs could not be labelled (they are still listed); "
                         "without it such a run exits with status 1 after writing the other results")
    return ap


_FILE_COLS = ("file", "path", "audio", "wav_id", "id")
_TEXT_COLS = ("text", "transcript", "발화문")


def read_transcripts(path: str) -> dict[str, str]:
    """``{key: text}`` from a CSV; keys are the file column's value, its name and its stem."""
    p = Path(path)
    if not p.is_file():
        raise ZooUserError(f"--transcripts: no such file: {p}")
    raw = p.read_bytes()
    for enc in ("utf-8-sig", "cp949"):  # AI Hub's CSVs are cp949
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ZooUserError(f"--transcripts {p}: neither UTF-8 nor cp949")
    rows = list(csv.DictReader(text.splitlines()))
    if not rows:
        raise ZooUserError(f"--transcripts {p}: no rows")
    cols = {c.strip(): c for c in rows[0]}
    fcol = next((cols[c] for c in _FILE_COLS if c in cols), None)
    tcol = next((cols[c] for c in _TEXT_COLS if c in cols), None)
    if fcol is None or tcol is None:
        raise ZooUserError(f"--transcripts {p}: needs a file column ({', '.join(_FILE_COLS)}) and a text column "
                           f"({', '.join(_TEXT_COLS)}); it has {list(cols)}")
    out: dict[str, str] = {}
    for r in rows:
        key, t = (r.get(fcol) or "").strip(), (r.get(tcol) or "").strip()
        if key:
            for k in (key, Path(key).name, Path(key).stem):
                out.setdefault(k, t)
    return out


def load_asr(model: str, device: str | None = None):
    """``fn(wav, sample_rate) -> text`` from a transformers automatic-speech-recognition model (hub
    id or local dir). Audio goes in as arrays at the pipeline's own rate (no ffmpeg needed)."""
    try:
        from transformers import pipeline
    except ImportError as e:  # pragma: no cover - transformers is a dependency
        raise ZooUserError(f"--asr needs transformers: {e}") from e
    from ..data.audio import resample

    try:
        asr = pipeline("automatic-speech-recognition", model=model, device=device or -1)
    except Exception as e:
        raise ZooUserError(f"--asr {model}: cannot load the ASR model: {e}") from e
    sr = int(getattr(asr.feature_extractor, "sampling_rate", 16000))

    def fn(wav, sample_rate: int) -> str:
        res = asr({"raw": resample(wav, sample_rate, sr), "sampling_rate": sr})
        return (res.get("text") or "").strip()
    return fn


def transcribe(files: Sequence[Path], model: str, device: str | None = None) -> list[str]:
    """Transcripts of files from a transformers ASR model (see ``load_asr``)."""
    from ..data.audio import read_audio

    asr = load_asr(model, device)
    out = []
    for f in files:
        try:
            wav, fsr = read_audio(str(f))
        except Exception as e:  # the file is reported again, by name, when it is labelled
            log.warning("--asr: cannot read %s: %s", f, e)
            out.append("")
            continue
        out.append(asr(wav, fsr))
    return out


def write_results(rows: list[dict], out: str | None, class_names: Sequence[str],
                  dims: Sequence[str] = ()) -> None:
    """JSON lines on stdout or in a .jsonl file, or a CSV with one ``prob_<class>`` column per
    class and one column per predicted dimension (``arousal``, ``valence``, ...)."""
    if out is None:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False))
        return
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix == ".csv":
        # one row per file (start/end empty) followed by its windows, if it was windowed
        fields = ["file", "start", "end", "label", "duration", "text", *[f"prob_{c}" for c in class_names],
                  *dims]
        if any("note" in r or any("note" in w for w in r.get("track", [])) for r in rows):
            # "no speech detected" (--segment vad), "no speech energy" (a silent file or window)
            fields.append("note")

        def scores(r: dict) -> dict:
            return {**{f"prob_{c}": f"{v:.6f}" for c, v in r["probs"].items()},
                    **{d: f"{v:.6f}" for d, v in r.get("dims", {}).items()}}
        with open(p, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            for r in rows:
                w.writerow({"file": r["file"], "label": r["label"] or "", "duration": r.get("duration", ""),
                            "text": r.get("text", ""), **scores(r), **({"note": r["note"]} if "note" in r else {})})
                for win in r.get("track", []):
                    w.writerow({"file": r["file"], "start": win["start"], "end": win["end"],
                                "label": win["label"] or "", "text": win.get("text", ""), **scores(win),
                                **({"note": win["note"]} if "note" in win and "note" in fields else {})})
    elif p.suffix == ".jsonl":
        with open(p, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    else:
        raise ZooUserError(f"--out {p}: use a .jsonl or .csv file name")
    log.info("wrote %d predictions to %s", len(rows), p)


def main_infer(argv: Sequence[str] | None = None) -> None:
    a = infer_parser().parse_args(argv)
    from .predictor import expand_inputs, load

    if a.out and Path(a.out).suffix not in (".jsonl", ".csv"):
        raise ZooUserError(f"--out {a.out}: use a .jsonl or .csv file name")  # before minutes of work
    model = load(a.model, registry=a.registry, trust=a.trust, device=a.device, batch_size=a.batch_size,
                 max_seconds=a.max_seconds, window=a.window, hop=a.hop)
    if not a.inputs:
        if model.uses_audio or not a.text:
            raise ZooUserError("give audio files, folders or globs to label" +
                               ("" if model.uses_audio else " (or --text for this text-only model)"))
        files: list[Path] = []
        texts: list[str | None] = list(a.text)
    else:
        files = expand_inputs(a.inputs)
        texts = [None] * len(files)
        if a.text is not None:
            if len(a.text) != len(files):
                raise ZooUserError(f"--text gives {len(a.text)} transcripts for {len(files)} files: "
                                   "give one per file, in order (or use --transcripts)")
            texts = list(a.text)
        if a.transcripts:
            table = read_transcripts(a.transcripts)
            for i, f in enumerate(files):
                if texts[i] is None:
                    texts[i] = next((table[k] for k in (str(f), f.name, f.stem) if k in table), None)
        if model.uses_text and a.asr and a.segment == "vad":
            pass  # each speech segment is transcribed on its own (below)
        elif model.uses_text and a.asr:
            todo = [i for i, t in enumerate(texts) if not (t or "").strip()]
            if todo:
                log.info("transcribing %d file(s) with %s", len(todo), a.asr)
                for i, t in zip(todo, transcribe([files[i] for i in todo], a.asr, a.device)):
                    texts[i] = t
        elif a.asr:
            log.warning("--asr ignored: %s does not read text", type(model.module).__name__)
        if model.uses_text and not model.needs_text and not (a.asr and a.segment == "vad"):
            n = sum(1 for t in texts if not (t or "").strip())
            if n:
                log.info("%d of %d file(s) have no transcript: predicted from audio alone", n, len(files))
    if a.adapt:
        if not files:
            raise ZooUserError("--adapt needs audio files (at least 2 of one speaker)")
        model.adapt(files)
        log.info("adapted to the speaker of the %d input file(s)", len(files))
    names = [str(f) for f in files] or [f"text {i}" for i in range(len(texts))]
    log.info("labelling %d %s with %s ...", len(names), "file(s)" if files else "transcript(s)", a.model)
    if a.segment == "vad":
        if not files:
            raise ZooUserError("--segment vad needs audio files")
        results = _infer_vad(model, files, texts, a)
    else:
        results = model.predict_batch(files or [None] * len(texts), texts, names=names, skip_errors=True,
                                      progress=not a.no_progress and sys.stderr.isatty())
    rows, bad = [], []
    for name, t, r in zip(names, texts, results):
        if "error" in r:  # reported, not written: every row of the output is a prediction
            bad.append(f"{name}: {r['error']}")
            continue
        row = {"file": name, **r}
        if model.uses_text:
            row["text"] = t or ""
        rows.append(row)
    write_results(rows, a.out, model.class_names, model.dims)
    notes: dict[str, list[str]] = {}
    for r in rows:  # "no speech detected" (--segment vad), "no speech energy" (silence)
        if r.get("note"):
            notes.setdefault(r["note"], []).append(r["file"])
    for note, silent in notes.items():
        log.warning("%s in %d file(s), not labelled: %s", note, len(silent), ", ".join(silent))
    if bad:
        log.warning("%d of %d file(s) could not be labelled%s:\n  %s", len(bad), len(names),
                    "" if a.skip_errors else " (exit status 1; --skip-errors: 0)", "\n  ".join(bad))
    if a.plot:
        # a track with something labelled (a silent file has windows, none labelled)
        long = [r for r in rows if any(w.get("probs") or w.get("dims") for w in r.get("track", []))]
        if not long:
            log.warning("--plot: no file had speech, so there is no track to draw" if a.segment == "vad" else
                        "--plot: no file was longer than --max-seconds %.1f s, so there is no track to draw",
                        *(() if a.segment == "vad" else (a.max_seconds,)))
        plot = Path(a.plot)
        for r in long:
            png = plot if (len(long) == 1 and plot.suffix == ".png") else plot / (Path(r["file"]).stem + ".png")
            log.info("track of %s drawn to %s", r["file"], plot_track(r, Path(r["file"]).name, png))
    if bad and not a.skip_errors:
        raise SystemExit(1)


def _infer_vad(model, files: Sequence[Path], texts: Sequence[str | None], a) -> list[dict]:
    """``--segment vad``: each file through the live stream at once (``predict_long(segment="vad")``)."""
    from ..live.segment import Segmenter, vad_options

    vad = vad_options(a)

    Segmenter(**vad)  # a bad option fails here, once, not once per file
    asr = load_asr(a.asr, a.device) if (a.asr and model.uses_text) else None
    if asr is None:
        model._check_text(texts, [str(f) for f in files])
    bar = None
    if not a.no_progress and sys.stderr.isatty() and len(files) > 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files), unit="file", desc="infer", dynamic_ncols=True)
    out = []
    for f, t in zip(files, texts):
        try:
            out.append(model.predict_long(f, t, segment="vad", vad=vad,
                                          asr=asr if not (t or "").strip() else None))
        except ZooUserError as e:
            log.warning("skipping %s: %s", f, e)
            out.append({"error": str(e)})
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return out


# -- checkpoints -------------------------------------------------------------------------------------
def main_checkpoints(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m zoo checkpoints",
                                 description="The pretrained checkpoints of the registry (zoo.load takes any name).")
    ap.add_argument("--registry", default=None)
    ap.add_argument("--json", action="store_true", help="the full entries as JSON")
    ap.add_argument("--verify", action="store_true", help="check every local file against its sha256")
    ap.add_argument("--markdown", action="store_true", help="the table as Markdown (docs/checkpoints.md)")
    a = ap.parse_args(argv)
    from .registry import Registry, verify

    reg = Registry.load(a.registry)
    if a.json:
        print(json.dumps([{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(e).items() if k != "base"}
                          for e in reg.entries.values()], ensure_ascii=False, indent=2))
        return
    head = ["name", "model", "corpus", "classes", "WA", "UA", "F1", "CCC", "size", "source"]
    rows = []
    for e in reg.entries.values():
        m = e.metrics
        rows.append([e.name, e.model.rsplit(".", 1)[-1], e.corpus.split(" (")[0],
                     str(len(e.class_names)) if e.class_names else "-",
                     *(f"{m[k]:.3f}" if k in m else "-" for k in ("test/WA", "test/UA", "test/macro_F1",
                                                                  "test/CCC_mean")),
                     f"{e.size / 1e6:.1f} MB", "file" if e.file and e.local_path.is_file() else (e.url or "missing")])
        if a.verify and e.local_path is not None and e.local_path.is_file():
            verify(e.local_path, e.sha256, e.name)
    if a.markdown:
        print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join([f"`{r[0]}`", *r[1:]]) + " |")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    if not rows:
        print(f"(no checkpoints in {reg.path})")
    elif a.verify:
        print(f"all {len(rows)} local files match their sha256")


# -- export --------------------------------------------------------------------------------------------
def main_export(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m zoo export",
        description="Export a checkpoint: --format hf writes a transformers ...ForSequenceClassification "
                    "directory (SSL models: wav2vec2, HuBERT, WavLM, data2vec-audio; not Whisper; the "
                    "audio-classification pipeline loads it); --format onnx "
                    "writes an ONNX graph with a dynamic number of samples (audio-only models).")
    _model_args(ap)
    ap.add_argument("--format", choices=["hf", "onnx"], required=True)
    ap.add_argument("--out", required=True, help="a directory (hf) or a .onnx file")
    a = ap.parse_args(argv)
    from ..models.loading import load_module
    from .cards import card_markdown
    from .export import export
    from .registry import resolve

    path, entry = resolve(a.model, a.registry)
    module = load_module(str(path), trust=a.trust)
    meta = _card_meta(module, entry, source=str(path))
    out = export(module, a.out, a.format, card=card_markdown(meta))
    if a.format == "onnx":  # an ONNX file has no room for a README: the card goes beside it
        Path(out).with_suffix(".md").write_text(card_markdown(meta) + "\n", encoding="utf-8")
    print(f"exported {a.model} to {out}")


def _card_meta(module, entry, source: str) -> dict:
    from ..models.loading import module_spec

    if entry is not None:
        meta = {k: v for k, v in vars(entry).items() if k != "base"}
    else:
        spec = module_spec(module)
        meta = {"name": Path(source).stem, "model": spec["class_path"], "config": spec["init_args"],
                "corpus": "", "split": "", "metrics": {},
                "intended_use": f"Exported from {source}; its training data and metrics were not recorded."}
    meta.update(inputs=list(module.inputs), sample_rate=int(module.sample_rate),
                class_names=list(module.class_names) if getattr(module, "predicts_categories", True) else [],
                dims=list(getattr(module, "dim_names", [])))
    return meta


# -- demo ---------------------------------------------------------------------------------------------
def main_demo(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m zoo demo",
        description="A local web page to try models on: upload or record audio, type a transcript, pick a "
                    "checkpoint, see the label and the class probabilities (needs the demo extra: "
                    "pip install -e '.[demo]').")
    _model_args(ap, required=False)
    ap.add_argument("--host", default="127.0.0.1", help="127.0.0.1 (this machine only) or 0.0.0.0")
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument("--share", action="store_true", help="a public gradio.live link (needs the network)")
    ap.add_argument("--example", default=None, help="an audio file loaded and predicted when the page opens")
    ap.add_argument("--example-text", default=None, help="its transcript")
    ap.add_argument("--max-upload-mb", type=float, default=20.0, help="largest upload accepted (MB)")
    ap.add_argument("--max-upload-seconds", type=float, default=120.0, help="longest upload accepted (seconds)")
    a = ap.parse_args(argv)
    from .demo import build_demo

    if a.example and not Path(a.example).is_file():
        raise ZooUserError(f"--example: no such file: {a.example}")
    app = build_demo(a.model, registry=a.registry, trust=a.trust, example=a.example, example_text=a.example_text,
                     max_mb=a.max_upload_mb, max_seconds=a.max_upload_seconds)
    # gradio refuses larger bodies itself, before they reach the disk
    app.launch(server_name=a.host, server_port=a.port, share=a.share, max_file_size=f"{a.max_upload_mb:g}mb")
