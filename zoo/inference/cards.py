"""Model cards: what trained a checkpoint, on which split, how well it did, what it predicts, its
licence and intended use. Written beside every shipped checkpoint and into every export."""
from __future__ import annotations

from typing import Any

METRIC_NAMES = {"test/WA": "WA (accuracy)", "test/UA": "UA (mean per-class recall)", "test/macro_F1": "macro-F1",
                "test/CCC_mean": "CCC (mean over dimensions)"}


def metric_name(key: str) -> str:
    if key.startswith("test/CCC_") and key not in METRIC_NAMES:
        return f"CCC {key[len('test/CCC_'):]}"
    if key.startswith("test/MAE_"):
        return f"MAE {key[len('test/MAE_'):]}"
    return METRIC_NAMES.get(key, key)

SYNTHETIC_CAVEAT = (
    "Trained on the zoo's **synthetic** Korean corpus (`python -m zoo synth`): formant-synthesised "
    "voices whose prosody follows the textbook cues of each emotion, and 171 scripted sentences. "
    "It shows that the pipeline learns, and it is what the docs, tests and demo run on without a "
    "download. It has **not** heard real speech: do not use it to recognise emotion in people.")


EMODB_CAVEAT = (
    "## Real speech, acted and German\n\n"
    "Trained on the Berlin Emotional Speech Database (EmoDB): 10 actors reading 10 everyday German "
    "sentences in 7 emotions in a studio. The metrics above are the leave-one-speaker-out "
    "cross-validation of this recipe (each actor tested once, never seen in training or model "
    "selection), with the held-out speaker standardised by their own unlabelled clips. They say how "
    "the recipe does on a new *actor* of the same corpus; spontaneous, noisy, or non-German speech "
    "will score lower, by an amount nobody has measured here.\n\n"
    "**Speaker adaptation.** The features are standardised per speaker. Give the model many "
    "unlabelled clips of the speaker, spanning several emotions (`model.adapt(files)`, "
    "`python -m zoo infer --adapt`), before labelling that speaker's speech. Without adaptation it "
    "uses its training speakers' statistics; with only a few clips, the clips' own emotion shifts the "
    "statistics. What each costs on EmoDB: docs/results.md (`benchmarks/emodb_adaptation.py`).\n\n"
    "Licence of the training data: EmoDB is distributed free of charge for research by TU Berlin "
    "(Burkhardt et al., 2005, \"A Database of German Emotional Speech\", Interspeech); check its terms "
    "before any commercial use of these weights.")


def card_markdown(meta: dict[str, Any]) -> str:
    """A model card from registry-style metadata (name, model, class_names, dims, corpus, split,
    metrics, license, intended_use, command, params, inputs, sample_rate, config)."""
    name = meta.get("name", "model")
    lines = [f"# {name}", ""]
    if meta.get("description"):
        lines += [meta["description"], ""]
    lines += ["| | |", "|---|---|",
              f"| model | `{meta.get('model', '?')}` |",
              f"| inputs | {', '.join(meta.get('inputs', []))} |",
              f"| sample rate | {meta.get('sample_rate', 16000)} Hz |"]
    if meta.get("params"):
        lines.append(f"| parameters | {meta['params']:,} |")
    lines += [f"| training data | {meta.get('corpus') or 'not recorded'} |",
              f"| split | {meta.get('split') or 'not recorded'} |",
              f"| licence | {meta.get('license') or 'not stated'} |", ""]
    metrics = meta.get("metrics") or {}
    if metrics:
        said = []
        if any(k in metrics for k in ("test/WA", "test/UA", "test/macro_F1")):
            said.append("WA is overall accuracy; UA is the mean of per-class recalls over the classes present (unweighted accuracy); "
                        "macro-F1 is the mean of per-class F1 scores.")
        if any(k.startswith("test/CCC_") for k in metrics):
            said.append("CCC is Lin's concordance correlation coefficient between predicted and rated "
                        "dimension (1 = perfect agreement, 0 = none)"
                        + ("; MAE is the mean absolute error on the [0, 1] scale." if any(
                            k.startswith("test/MAE_") for k in metrics) else "."))
        lines += ["## Test metrics", "", " ".join(said), "", "| metric | value |", "|---|---|"]
        lines += [f"| {metric_name(k)} | {v:.3f} |" for k, v in metrics.items()]
        lines.append("")
    classes = meta.get("class_names") or []
    dims = meta.get("dims") or []
    if classes:
        lines += ["## Labels", "", "| id | label |", "|---|---|"]
        lines += [f"| {i} | {c} |" for i, c in enumerate(classes)]
    if dims:
        if classes:
            lines.append("")
        lines += ["## Dimensions", "",
                  "Regression outputs on the [0, 1] scale of the training ratings (0 = the low end of the "
                  "corpus's scale, 1 = its high end), in this order:", "", "| output | dimension |", "|---|---|"]
        lines += [f"| {i} | {d} |" for i, d in enumerate(dims)]
    lines += ["", "## Intended use", "", meta.get("intended_use") or "Not stated.", ""]
    if meta.get("command"):
        lines += ["## How it was trained", "", "```", meta["command"], "```", ""]
    if meta.get("config"):
        import yaml

        lines += ["## Model config", "", "```yaml",
                  yaml.safe_dump(meta["config"], sort_keys=False, allow_unicode=True).rstrip(), "```", ""]
    inputs = set(meta.get("inputs") or [])
    if inputs == {"text"}:
        call = 'model.predict(text="나 어제 헤어졌어")'
    elif "text" in inputs:
        call = 'model.predict("a.wav", text="나 어제 헤어졌어")'
    else:
        call = 'model.predict("a.wav")'
    lines += ["## Use", "", "```python", "import zoo", f"model = zoo.load({name!r})", call, "```", ""]
    return "\n".join(lines)
