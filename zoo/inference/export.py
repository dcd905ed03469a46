"""Export a trained zoo model for use without the zoo.

- :func:`export_hf`: an ``SSLClassifier`` (``Wav2Vec2Classifier``) becomes a standard Hugging Face
  ``Wav2Vec2ForSequenceClassification`` directory (the other wav2vec2-layout types: their
  ``...ForSequenceClassification``, as the SSL family table says; LoRA adapters merged; Whisper is
  refused) (config with ``id2label``, safetensors weights, ``Wav2Vec2FeatureExtractor``, model
  card) that ``transformers.pipeline("audio-classification", model=dir)`` loads and that gives
  the zoo model's probabilities on the same clip.
- :func:`export_onnx`: an audio-only model (``AudioCNN`` with the CNN-BiLSTM encoder,
  ``SSLClassifier`` but Whisper's) becomes one ONNX file; the graph is the model family's
  (``export_graph``: :class:`zoo.nn.audio.CNNLSTMGraph`, :class:`zoo.nn.ssl.graph.SSLGraph`).
  Inputs: ``waveform`` float32 (batch, samples), zero-padded, at the model's sample rate, and
  ``lengths`` int64 (batch,), the true sample counts;
  outputs: ``logits`` and ``probs`` (batch, classes), and ``dims`` (batch, dimensions) for a model
  with dimensional targets (a dimension-only model has ``dims`` alone). Both axes are dynamic, and
  padding is masked as in the zoo, so a clip gets the same output alone and in a padded batch. The
  class names, dimensions and sample rate are in the model's metadata (``class_names`` and ``dims``
  as JSON, ``sample_rate``).
- :func:`export`: picks one of the two by format name.

Heavy and optional packages (transformers, onnx, onnxruntime, onnxscript) are imported only
when an export runs.
"""
from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from ..errors import ZooUserError

log = logging.getLogger("zoo")

FORMATS = ("hf", "onnx")
_EXTRA = "pip install 'zoo[export]' (onnx, onnxruntime, onnxscript)"


def export(module, out: str | Path, fmt: Literal["hf", "onnx"], card: str | None = None) -> Path:
    """Export ``module`` to ``out`` in format ``fmt`` (``hf``: a Hugging Face model directory;
    ``onnx``: one ``.onnx`` file). ``card`` is the model card text of an HF export (README.md);
    an ONNX file has no room for one (its metadata holds the class names and sample rate)."""
    if fmt == "hf":
        return export_hf(module, out, card=card)
    if fmt == "onnx":
        return export_onnx(module, out)
    raise ZooUserError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)} (--format)")


# -- Hugging Face ----------------------------------------------------------------------------------
def _hf_head(module) -> nn.Linear:
    """The zoo head's one linear layer, or a ZooUserError naming the option HF cannot represent."""
    from ..nn.pooling import MeanPooling

    if not getattr(module, "hf_exportable", False):  # the family says whether HF has its twin
        from ..nn.ssl import families

        hint = " (use --format onnx)" if tuple(module.inputs) == ("audio",) else ""
        targets = [t.hf_classifier for f in families().values() for t in f.types if t.hf_classifier]
        raise ZooUserError(
            f"--format hf exports SSLClassifier / Wav2Vec2Classifier models only (to transformers' "
            f"{', '.join(targets)}); {type(module).__name__} has no Hugging Face counterpart{hint}")
    if getattr(module, "dim_names", None):
        raise ZooUserError(
            f"this model predicts dimensions ({', '.join(module.dim_names)}), and the Hugging Face "
            "audio classifiers have class logits only, so the Hugging Face export would drop them: "
            "export it with --format onnx (its dims output)")
    refusal = module.encoder.family.hf_export_refusal(module.encoder)
    if refusal:
        raise ZooUserError(refusal)
    if not isinstance(module.encoder.pool, MeanPooling):
        raise ZooUserError(
            "this model was trained with pooling: attentive, and Wav2Vec2ForSequenceClassification "
            "only mean-pools frames, so it cannot be exported to Hugging Face exactly: train with "
            "pooling: mean, or export it with --format onnx")
    layers = [m for m in module.head if not isinstance(m, nn.Dropout)]
    if len(layers) != 1 or not isinstance(layers[0], nn.Linear):
        raise ZooUserError(
            "this model has a hidden head layer (head_hidden is set: linear -> ReLU -> linear), and "
            "Wav2Vec2ForSequenceClassification's head has no nonlinearity (projector -> mean -> "
            "classifier), so it cannot be exported to Hugging Face exactly: train with "
            "head_hidden: null, or export it with --format onnx")
    return layers[0]


def export_hf(module, out_dir: str | Path, card: str | None = None) -> Path:
    """Write a zoo ``Wav2Vec2Classifier`` as a Hugging Face ``Wav2Vec2ForSequenceClassification``
    directory: ``config.json`` (with ``id2label``/``label2id``), ``model.safetensors``,
    ``preprocessor_config.json`` (a ``Wav2Vec2FeatureExtractor``) and ``README.md`` (``card``, or
    a generated card). Returns the directory.

    The mapping is exact: HF's head is projector (linear) -> mean over valid frames -> classifier
    (linear) with nothing in between, and a mean commutes with a linear map, so the zoo's
    mean pooling + linear head becomes projector = the zoo's linear layer
    (``classifier_proj_size`` = number of classes) and classifier = identity. The zoo's SUPERB
    layer weighting is HF's ``use_weighted_layer_sum`` (the same num_layers + 1 hidden states,
    softmax weights). Attentive pooling or a hidden head layer (``head_hidden``) cannot be
    represented and raise a ZooUserError.
    """
    linear = _hf_head(module)
    try:
        from transformers import AutoModelForAudioClassification
    except ImportError as e:  # pragma: no cover - transformers is a core dependency
        raise ZooUserError(f"--format hf needs transformers: {e}") from e

    enc = module.encoder
    n = module.num_classes
    config = copy.deepcopy(enc.model.config)
    config.id2label = {i: c for i, c in enumerate(module.class_names)}
    config.label2id = {c: i for i, c in enumerate(module.class_names)}
    config.classifier_proj_size = n
    # one chosen layer = the weighted sum with all the weight on it (softmax of -1e4 is 0 in fp32)
    config.use_weighted_layer_sum = enc.layer_weights is not None or enc.layer is not None
    if hasattr(config, "add_adapter"):
        config.add_adapter = False
    hf = AutoModelForAudioClassification.from_config(config).eval()  # e.g. WavLMForSequenceClassification
    config.architectures = [type(hf).__name__]
    missing, unexpected = getattr(hf, hf.base_model_prefix).load_state_dict(_merged_state_dict(enc.model),
                                                                             strict=False)
    if missing or unexpected:  # same class on both sides: this would be a zoo bug
        raise RuntimeError(f"encoder weights do not map: missing {missing}, unexpected {unexpected}")
    with torch.no_grad():
        hf.projector.weight.copy_(linear.weight)
        hf.projector.bias.copy_(linear.bias)
        hf.classifier.weight.copy_(torch.eye(n))
        hf.classifier.bias.zero_()
        if enc.layer_weights is not None:
            hf.layer_weights.copy_(enc.layer_weights)  # both apply softmax to the raw weights
        elif enc.layer is not None:
            hf.layer_weights.fill_(-1e4)
            hf.layer_weights[enc.layer] = 0.0
    feature_extractor = enc.family.hf_feature_extractor(enc, module.sample_rate)

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ZooUserError(f"--out {out} is a file; an HF export is a directory")
    out.mkdir(parents=True, exist_ok=True)
    hf.to(torch.float32).save_pretrained(out, safe_serialization=True)
    feature_extractor.save_pretrained(out)
    (out / "README.md").write_text(_hf_card(module, card, config), encoding="utf-8")
    log.info("Hugging Face model written to %s", out)
    return out


def _merged_state_dict(model: nn.Module) -> dict:
    """The encoder's state dict with any LoRA adapters merged into the weights they adapt
    (``W + B A * alpha / r``), under the plain transformers names."""
    if not any("lora_" in k for k, _ in model.named_parameters()):
        return model.state_dict()
    from peft.tuners.lora import LoraLayer

    merged = copy.deepcopy(model)
    for m in merged.modules():
        if isinstance(m, LoraLayer):
            m.merge()
    return {k.replace(".base_layer.", "."): v for k, v in merged.state_dict().items() if "lora_" not in k}


def _hf_card(module, card: str | None, config) -> str:
    """The model card: the given text (or one made from the model), with the Hub's metadata
    header and a transformers usage section added when they are missing."""
    if card is None:
        from .cards import card_markdown

        card = card_markdown({
            "name": f"{module.encoder.model_type} emotion classifier",
            "model": f"{type(module).__module__}.{type(module).__name__}",
            "inputs": ["audio"], "sample_rate": int(module.sample_rate),
            "params": sum(p.numel() for p in module.parameters()),
            "class_names": list(module.class_names)})
        card = card.split("\n## Use\n")[0]  # its zoo.load(name) needs a registry name this model lacks
    text = card.strip() + "\n"
    if "audio-classification" not in text:
        group = getattr(config, "feat_extract_norm", "layer") == "group"
        text += (
            "\n## Use with transformers\n\n"
            "```python\nfrom transformers import pipeline\n"
            "clf = pipeline(\"audio-classification\", model=\"path/to/this/folder\")\n"
            "clf(\"a.wav\", top_k=None)  # every class with its probability\n```\n\n"
            f"Audio is resampled to {int(module.sample_rate)} Hz. Exported from the zoo's "
            f"`{type(module).__name__}`; a clip alone gives the zoo model's probabilities."
            + (" This checkpoint normalises its first CNN layer over time (GroupNorm) and takes no "
               "attention mask, so run clips one at a time (the pipeline's default batch size) for "
               "the same results as the zoo; padded batches change them." if group else "")
            + f" Clips need at least {module.encoder.min_samples} samples (the CNN's receptive field; "
            "the zoo pads shorter ones with zeros).\n")
    if not text.startswith("---"):
        text = ("---\nlibrary_name: transformers\npipeline_tag: audio-classification\n"
                f"tags:\n- audio-classification\n- speech-emotion-recognition\n- {config.model_type}\n---\n\n" + text)
    return text


# -- ONNX -------------------------------------------------------------------------------------------
class _WithProbs(nn.Module):
    """The head's outputs as named graph outputs: logits and probs (when the model has classes),
    dims (when it has dimensions)."""

    def __init__(self, net: nn.Module, num_logits: int, num_dims: int):
        super().__init__()
        self.net = net
        self.num_logits, self.num_dims = num_logits, num_dims

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor):
        out = self.net(waveform, lengths)
        c = self.num_logits
        res: tuple[torch.Tensor, ...] = ()
        if c:
            logits = out[:, :c] if self.num_dims else out
            res += (logits, logits.softmax(-1))
        if self.num_dims:
            res += (out[:, c:],)
        return res if len(res) > 1 else res[0]

    @property
    def output_names(self) -> list[str]:
        return (["logits", "probs"] if self.num_logits else []) + (["dims"] if self.num_dims else [])


def onnx_graph(module) -> nn.Module:
    """The module that is exported: ``(waveform (B, T) float32, lengths (B,) int64) -> (logits,
    probs[, dims])``. The family builds it (``export_graph``); a ZooUserError names what prevents
    an export."""
    net = module.export_graph()
    num_logits = getattr(module, "num_logits", module.num_classes)
    return _WithProbs(net, num_logits, len(getattr(module, "dim_names", []))).cpu().float().eval()


def export_onnx(module, out_path: str | Path, opset: int = 17,
                exporter: Literal["auto", "torchscript", "dynamo"] = "auto") -> Path:
    """Write an audio-only zoo model as an ONNX file and return its path.

    Inputs: ``waveform`` float32 (batch, samples), zero-padded, at ``module.sample_rate``, and
    ``lengths`` int64 (batch,), each clip's true number of samples; outputs ``logits`` and
    ``probs`` (batch, classes). Batch size and length are dynamic. The metadata holds
    ``class_names`` (JSON list), ``sample_rate``, ``model`` (zoo class) and ``inputs``.

    ``exporter``: ``torchscript`` (``torch.onnx.export(dynamo=False)``: seconds, any opset >= 17),
    ``dynamo`` (torch's newer exporter: slower here, opset >= 18) or ``auto`` (TorchScript, and
    dynamo where the TorchScript exporter fails or is gone).
    """
    try:
        import onnx
    except ImportError as e:
        raise ZooUserError(f"--format onnx needs the export extra: {_EXTRA} ({e})") from e
    if exporter not in ("auto", "torchscript", "dynamo"):
        raise ZooUserError(f"exporter must be auto, torchscript or dynamo, got {exporter!r}")
    if opset < 17:
        raise ZooUserError(f"ONNX export needs opset >= 17 (LayerNormalization), got {opset}")
    graph = onnx_graph(module)
    out = Path(out_path)
    if out.is_dir():
        raise ZooUserError(f"--out {out} is a directory; give the .onnx file to write")
    out.parent.mkdir(parents=True, exist_ok=True)

    # a padded batch as the example, so neither the batch size nor a length gets baked in
    sr = int(module.sample_rate)
    n = max(sr, 4 * graph.net.pad)
    waveform = torch.randn(2, n, generator=torch.Generator().manual_seed(0)) * 0.1
    lengths = torch.tensor([n, (2 * n) // 3], dtype=torch.long)
    waveform[1, lengths[1]:] = 0
    big = sum(p.numel() * p.element_size() for p in graph.parameters()) > 1_800_000_000  # protobuf's 2 GB
    _torch_export(graph, (waveform, lengths), out, opset, exporter, external_data=big,
                  output_names=graph.output_names)

    # weights stay where the exporter put them (inside, or beside the file for > 2 GB)
    proto = onnx.load(str(out), load_external_data=False)
    classes = list(module.class_names) if graph.num_logits else []
    dims = list(getattr(module, "dim_names", []))
    said = (["logits, probs: float32 (batch, classes) in class_names order"] if classes else []) + \
        (["dims: float32 (batch, dimensions) in dims order, [0, 1] scale"] if dims else [])
    meta = {"class_names": json.dumps(classes, ensure_ascii=False), "dims": json.dumps(dims),
            "sample_rate": str(sr), "model": f"{type(module).__module__}.{type(module).__name__}",
            "inputs": "waveform: float32 (batch, samples), zero-padded, mono at sample_rate; "
                      "lengths: int64 (batch,), true sample counts",
            "outputs": "; ".join(said)}
    del proto.metadata_props[:]
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)
    proto.doc_string = f"zoo {type(module).__name__} speech emotion model ({', '.join(classes + dims)})"
    onnx.save(proto, str(out))
    log.info("ONNX model written to %s", out)
    return out


def _torch_export(graph: nn.Module, args: tuple, out: Path, opset: int, exporter: str,
                  external_data: bool = False, output_names: list[str] | None = None) -> None:
    """``torch.onnx.export`` with a dynamic batch size and length.

    The TorchScript exporter comes first under ``auto``: it takes seconds and honours opset 17,
    where the dynamo exporter takes tens of seconds on these models (it retries the trace with
    relaxed shape constraints) and emits opset 18 at least. Both give the same outputs here."""
    import warnings

    output_names = output_names or ["logits", "probs"]
    names = dict(input_names=["waveform", "lengths"], output_names=output_names)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter deprecation and tracer chatter, not the user's to act on
        if exporter in ("auto", "torchscript"):
            dyn = {"waveform": {0: "batch", 1: "samples"}, "lengths": {0: "batch"},
                   **{k: {0: "batch"} for k in output_names}}
            try:
                torch.onnx.export(graph, args, str(out), dynamo=False, opset_version=opset,
                                  dynamic_axes=dyn, **names)
                return
            except Exception as e:  # noqa: BLE001 - under auto, any failure tries the other exporter
                if exporter == "torchscript":
                    raise ZooUserError(f"the TorchScript ONNX exporter failed: {e}") from e
                log.info("TorchScript ONNX export failed (%s: %s); trying the dynamo exporter",
                         type(e).__name__, (str(e).splitlines() or [""])[0])
        import importlib.util

        if importlib.util.find_spec("onnxscript") is None:  # the dynamo exporter's op library
            raise ZooUserError(f"the dynamo ONNX exporter needs onnxscript: {_EXTRA}")
        from torch.export import Dim

        batch, samples = Dim("batch", min=1), Dim("samples", min=1)
        torch.onnx.export(graph, args, str(out), dynamo=True, opset_version=max(opset, 18),
                          external_data=external_data, verbose=False,
                          dynamic_shapes={"waveform": {0: batch, 1: samples}, "lengths": {0: batch}}, **names)


__all__ = ["export", "export_hf", "export_onnx", "onnx_graph", "FORMATS"]
