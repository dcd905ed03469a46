"""Configs written for the per-corpus DataModules (before ``EmotionDataModule(corpus=...)``):
found before LightningCLI parses, and answered with the config as it is written now.

Old form::

    data:
      class_path: zoo.data.AIHubDataModule
      init_args: {root: /data/aihub, split_mode: group, val_fraction: 0.1, batch_size: 32}

New form::

    data:
      class_path: zoo.data.EmotionDataModule
      init_args:
        corpus: {class_path: zoo.data.corpora.AIHub, init_args: {root: /data/aihub}}
        split: {mode: group, val_fraction: 0.1}
        batch_size: 32
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ZooUserError

# old DataModule -> (corpus class, {old option: corpus option})
OLD_MODULES: dict[str, tuple[str, dict[str, str]]] = {
    "AIHubDataModule": ("AIHub", {"root": "root", "conversation_gap": "conversation_gap",
                                  "group_by_demographics": "group_by_demographics"}),
    "SyntheticDataModule": ("Synthetic", {k: k for k in ("root", "size", "corpus_seed", "voice", "words",
                                                         "both", "conversation_gap",
                                                         "group_by_demographics")}),
    "ManifestDataModule": ("Manifest", {"manifest": "path"}),
    "EmoDBDataModule": ("EmoDB", {"root": "root"}),
}
# old flat option -> field of data.init_args.split
OLD_SPLIT_KEYS = {"split_mode": "mode", "group_by": "group_by", "text_disjoint": "text_disjoint",
                  "use_split_column": "use_split_column", "val_fraction": "val_fraction",
                  "test_fraction": "test_fraction", "num_folds": "num_folds", "fold": "fold",
                  "test_speakers": "test_speakers", "val_speakers": "val_speakers"}
OLD_CORPUS_KEYS = {"root", "manifest", "size", "corpus_seed", "voice", "words", "both",
                   "conversation_gap", "group_by_demographics"}


def _old_name(class_path: object) -> str | None:
    if not isinstance(class_path, str):
        return None
    name = class_path.rsplit(".", 1)[-1]
    return name if name in OLD_MODULES else None


def migrate(data: dict) -> dict:
    """The ``data:`` block of an old config, rewritten in the current form."""
    old = _old_name(data.get("class_path"))
    init = dict(data.get("init_args") or {})
    corpus_cls, corpus_keys = OLD_MODULES.get(old, (None, {}))
    corpus_args, split, rest = {}, {}, {}
    for k, v in init.items():
        if k in corpus_keys:
            corpus_args[corpus_keys[k]] = v
        elif k in OLD_SPLIT_KEYS:
            split[OLD_SPLIT_KEYS[k]] = v
        else:
            rest[k] = v
    new_init: dict = {}
    if corpus_cls:
        new_init["corpus"] = {"class_path": f"zoo.data.corpora.{corpus_cls}", "init_args": corpus_args}
    elif "corpus" in init:
        new_init["corpus"] = init["corpus"]
    if split:
        new_init["split"] = {**(init.get("split") or {}), **split}
    new_init.update({k: v for k, v in rest.items() if k not in new_init})
    return {"class_path": "zoo.data.EmotionDataModule", "init_args": new_init}


def removed_message(class_path: str, data: dict | None = None, source: str = "") -> str:
    import yaml

    old = _old_name(class_path)
    new = migrate(data or {"class_path": class_path, "init_args": {}})
    snippet = yaml.safe_dump({"data": new}, sort_keys=False, allow_unicode=True).rstrip()
    return (f"{source + ': ' if source else ''}{class_path} was replaced by zoo.data.EmotionDataModule with "
            f"corpus: zoo.data.corpora.{OLD_MODULES[old][0]} (the split options moved under split:, "
            "split_mode became split.mode). Write it as:\n" + snippet)


def _flat_keys_message(keys: list[str], source: str) -> str:
    hints = []
    for k in keys:
        if k in OLD_SPLIT_KEYS:
            hints.append(f"{k} -> split.{OLD_SPLIT_KEYS[k]}")
        else:
            hints.append(f"{k} -> corpus.init_args.{'path' if k == 'manifest' else k}")
    return (f"{source}: {', '.join(map(repr, keys))} under data.init_args belong to the old per-corpus "
            f"DataModules; they now live under data.init_args as {'; '.join(hints)} "
            "(see docs/data.md)")


def check_args(argv: list[str]) -> None:
    """Raise :class:`ZooUserError` for an old-form data config in ``--config`` files or flags."""
    import yaml

    configs = []
    for i, a in enumerate(argv):
        if a == "--config" and i + 1 < len(argv):
            configs.append(argv[i + 1])
        elif a.startswith("--config="):
            configs.append(a.split("=", 1)[1])
        elif a in ("--data", "--data.class_path") and i + 1 < len(argv) and _old_name(argv[i + 1]):
            raise ZooUserError(removed_message(argv[i + 1], source=a))
        elif a.startswith(("--data=", "--data.class_path=")) and _old_name(a.split("=", 1)[1]):
            raise ZooUserError(removed_message(a.split("=", 1)[1], source=a.split("=", 1)[0]))
        elif a.startswith("--data."):
            key = a[len("--data."):].split("=", 1)[0]
            key = key[len("init_args."):] if key.startswith("init_args.") else key
            if key in OLD_SPLIT_KEYS or key in OLD_CORPUS_KEYS:
                raise ZooUserError(_flat_keys_message([key], a.split("=", 1)[0]))
    for c in configs:
        p = Path(c)
        if not p.is_file():
            continue  # LightningCLI reports it
        try:
            cfg = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        data = cfg.get("data") if isinstance(cfg, dict) else None
        if not isinstance(data, dict):
            continue
        if _old_name(data.get("class_path")):
            raise ZooUserError(removed_message(data["class_path"], data, source=str(p)))
        init = data.get("init_args") or {}
        flat = [k for k in init if k in OLD_SPLIT_KEYS or k in OLD_CORPUS_KEYS] if isinstance(init, dict) else []
        if flat:
            raise ZooUserError(_flat_keys_message(flat, str(p)))
