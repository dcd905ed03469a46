"""``python -m zoo demo``: a local gradio page to try a model on (the ``demo`` extra).

Upload or record audio, optionally type the transcript, pick a checkpoint, and see the label with
a bar chart of the class probabilities, and, for a model with dimensional targets, its arousal and
valence as a point on the arousal-valence plane. A model trained with ``normalize: speaker`` (the
EmoDB checkpoints) is adapted to the speaker when other clips of the same voice are attached
(``Predictor.adapt`` on them and the analysed clip). The page calls ``Predictor.predict``, the
same code as ``zoo.load(...).predict``, so the page and the Python API agree (a test checks it
through gradio_client). Its API endpoint is ``/predict`` (audio file, transcript, checkpoint name,
the speaker's other clips -> probabilities, label, model summary, arousal-valence plot).
"""
from __future__ import annotations

import os
import threading
from typing import Any

from ..errors import ZooUserError


def _require_gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network calls from a local page
    try:
        import gradio as gr
    except ImportError as e:
        raise ZooUserError("the demo needs gradio: pip install -e '.[demo]'") from e
    return gr


def _summary(m) -> str:
    e = m.entry
    parts = [f"**{type(m.module).__name__}** reads {', '.join(m.inputs)}"]
    if m.dims:
        parts.append("predicts " + ", ".join(m.dims) + (" and the class" if m.class_names else ""))
    if not m.needs_text and m.uses_text:
        parts.append("the transcript is optional")
    elif m.needs_text:
        parts.append("it needs the transcript")
    if e is not None:
        if e.metrics:
            parts.append("test " + ", ".join(f"{k.split('/')[-1]} {v:.3f}" for k, v in e.metrics.items()))
        if e.corpus:
            parts.append(f"trained on the {e.corpus}")
    return "; ".join(parts) + "."


#: limits on what a visitor may upload (the page may be reachable by others: --host 0.0.0.0)
MAX_UPLOAD_MB = 20.0
MAX_UPLOAD_SECONDS = 120.0


def check_upload(path: str, max_mb: float = MAX_UPLOAD_MB, max_seconds: float = MAX_UPLOAD_SECONDS) -> None:
    """Refuse an upload larger than ``max_mb`` or longer than ``max_seconds`` (read from its
    header, before it is decoded), or one that is not audio; raises ZooUserError saying which."""
    from ..data.audio import audio_info

    size = os.path.getsize(path)
    if size > max_mb * 1e6:
        raise ZooUserError(f"the file is {size / 1e6:.1f} MB; this page accepts up to {max_mb:g} MB")
    try:
        seconds = audio_info(path)[2]
    except Exception as e:
        raise ZooUserError(f"not a readable audio file: {e}") from None
    if seconds > max_seconds:
        raise ZooUserError(f"the recording is {seconds:.0f} s long; this page accepts up to {max_seconds:g} s")


def av_plane(dims: dict[str, float] | None):
    """A matplotlib figure of the arousal-valence plane (Russell's circumplex) with the prediction
    as a point; None when the model predicts neither arousal nor valence."""
    if not dims or not ({"arousal", "valence"} & set(dims)):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v, a = dims.get("valence", 0.5), dims.get("arousal", 0.5)
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.axhline(0.5, color="0.8", lw=1)
    ax.axvline(0.5, color="0.8", lw=1)
    for x, y, name in ((0.85, 0.9, "excited"), (0.15, 0.9, "tense"), (0.15, 0.1, "sad"), (0.85, 0.1, "calm")):
        ax.text(x, y, name, ha="center", va="center", color="0.55", fontsize=9)
    ax.scatter([v], [a], s=120, color="tab:red", zorder=3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("valence" + ("" if "valence" in dims else " (not predicted)"))
    ax.set_ylabel("arousal" + ("" if "arousal" in dims else " (not predicted)"))
    ax.set_title(", ".join(f"{d} {x:.2f}" for d, x in dims.items()))
    fig.tight_layout()
    return fig


def _label_text(r: dict) -> str:
    if r.get("label") is not None:
        return r["label"]
    return ", ".join(f"{d} {v:.2f}" for d, v in (r.get("dims") or {}).items())


def build_demo(model: str | None = None, *, registry: str | None = None, trust: bool = False,
               example: str | None = None, example_text: str | None = None,
               max_mb: float = MAX_UPLOAD_MB, max_seconds: float = MAX_UPLOAD_SECONDS):
    """The gradio Blocks app; ``model`` (a registry name or a checkpoint path) is preselected;
    ``example`` (an audio file) and ``example_text`` are loaded and predicted when the page opens;
    uploads above ``max_mb`` or ``max_seconds`` are refused (:func:`check_upload`)."""
    gr = _require_gradio()
    from .predictor import load
    from .registry import Registry

    names = Registry.load(registry).names()
    if model and model not in names:
        names.insert(0, model)
    if not names:
        raise ZooUserError("no checkpoints to serve: give --model PATH.ckpt")
    default = model or names[0]
    cache: dict[str, Any] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = load(name, registry=registry, trust=trust)
        return cache[name]

    get(default)  # fail at start-up, not on the first click
    # gradio serves clicks from threads and a Predictor's speaker adaptation is its state: one
    # prediction (adapt + predict) at a time
    lock = threading.Lock()

    def predict(audio: str | None, text: str | None, checkpoint: str, speaker_clips=None):
        m = get(checkpoint or default)
        text = (text or "").strip() or None
        clips = [str(c) for c in (speaker_clips or [])]  # type="filepath": paths
        if m.uses_audio and not audio:
            raise gr.Error("Upload or record some speech first.")
        if m.needs_text and not text:
            raise gr.Error(f"{checkpoint} reads the transcript: type it in the text box.")
        adapts = bool(clips) and m.uses_audio and m.module.normalizes_per_speaker
        try:
            if m.uses_audio:
                for f in [audio, *clips]:
                    check_upload(f, max_mb, max_seconds)
            with lock:
                m.adapt([audio, *clips] if adapts else None)
                try:
                    r = m.predict(audio if m.uses_audio else None, text)
                finally:
                    m.adapt(None)
        except ZooUserError as e:
            raise gr.Error(str(e))
        note = ""
        if adapts:
            note = f" Adapted to the speaker of this clip and {len(clips)} more."
        elif clips:
            note = " The speaker's other clips are not used: this model does not standardise per speaker."
        elif m.uses_audio and m.module.normalizes_per_speaker:
            note = (" Trained with per-speaker standardisation: attach other clips of the same voice "
                    "to adapt it (without them it uses its training speakers' statistics).")
        fig = av_plane(r.get("dims"))
        return r["probs"], _label_text(r), _summary(m) + note, fig

    with gr.Blocks(title="zoo: speech emotion recognition") as app:
        gr.Markdown("## zoo: speech emotion recognition\nUpload or record speech, add the transcript if "
                    "you have it, and pick a checkpoint. The bars are the model's class probabilities.")
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(example, sources=["upload", "microphone"], type="filepath", label="speech")
                text = gr.Textbox(example_text, label="transcript (text and fusion models)",
                                  placeholder="나 어제 헤어졌어")
                ckpt = gr.Dropdown(names, value=default, label="checkpoint")
                speaker = gr.File(file_count="multiple", type="filepath", file_types=["audio"],
                                  label="other clips of the same speaker (optional: adapts the models "
                                        "trained with per-speaker standardisation, e.g. emodb-compare)")
                button = gr.Button("Recognise emotion", variant="primary")
            with gr.Column():
                probs = gr.Label(num_top_classes=max(1, len(get(default).class_names)), label="class probabilities")
                label = gr.Textbox(label="predicted emotion", interactive=False)
                plane = gr.Plot(label="arousal-valence plane (models with dimensional targets)")
                info = gr.Markdown(_summary(get(default)))
        outputs = [probs, label, info, plane]
        button.click(predict, [audio, text, ckpt, speaker], outputs, api_name="predict")
        ckpt.change(lambda n: _summary(get(n)), [ckpt], [info], api_name=False)
        if example:
            app.load(predict, [audio, text, ckpt, speaker], outputs, api_name=False)
    return app
