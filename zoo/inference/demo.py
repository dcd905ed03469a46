"""``python -m zoo demo``: a local gradio page to try a model on (the ``demo`` extra).

Upload or record audio, optionally type the transcript, pick a checkpoint, and see the label with
a bar chart of the class probabilities. The page calls ``Predictor.predict``, the same code as
``zoo.load(...).predict``, so the page and the Python API agree (a test checks it through
gradio_client). Its API endpoint is ``/predict`` (audio file, transcript, checkpoint name).
"""
from __future__ import annotations

import os
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

    def predict(audio: str | None, text: str | None, checkpoint: str):
        m = get(checkpoint or default)
        text = (text or "").strip() or None
        if m.uses_audio and not audio:
            raise gr.Error("Upload or record some speech first.")
        if m.needs_text and not text:
            raise gr.Error(f"{checkpoint} reads the transcript: type it in the text box.")
        try:
            if m.uses_audio:
                check_upload(audio, max_mb, max_seconds)
            r = m.predict(audio if m.uses_audio else None, text)
        except ZooUserError as e:
            raise gr.Error(str(e))
        return r["probs"], r["label"], _summary(m)

    with gr.Blocks(title="zoo: speech emotion recognition") as app:
        gr.Markdown("## zoo: speech emotion recognition\nUpload or record speech, add the transcript if "
                    "you have it, and pick a checkpoint. The bars are the model's class probabilities.")
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(example, sources=["upload", "microphone"], type="filepath", label="speech")
                text = gr.Textbox(example_text, label="transcript (text and fusion models)",
                                  placeholder="나 어제 헤어졌어")
                ckpt = gr.Dropdown(names, value=default, label="checkpoint")
                button = gr.Button("Recognise emotion", variant="primary")
            with gr.Column():
                probs = gr.Label(num_top_classes=len(get(default).class_names), label="class probabilities")
                label = gr.Textbox(label="predicted emotion", interactive=False)
                info = gr.Markdown(_summary(get(default)))
        button.click(predict, [audio, text, ckpt], [probs, label, info], api_name="predict")
        ckpt.change(lambda n: _summary(get(n)), [ckpt], [info], api_name=False)
        if example:
            app.load(predict, [audio, text, ckpt], [probs, label, info], api_name=False)
    return app
