"""What the LightningCLI needs from the zoo beyond its classes: parse errors a user can read
(first, one paragraph, the closest valid key, the config file that held it), the registered
classes for ``--help``, fusion branch options on the command line, and one output folder per run.

Imported by ``zoo.cli.build_cli`` only, after Lightning (it may import Lightning freely).
"""
from __future__ import annotations

import difflib
import inspect
import logging
import re
from pathlib import Path

import yaml


log = logging.getLogger("zoo")

PROG = "python -m zoo"
EVAL_COMMANDS = ("validate", "test", "predict")
# the zoo's default when a fit sets no limit (Lightning's own is 1000 epochs)
DEFAULT_MAX_EPOCHS = 20


# -- registered classes ---------------------------------------------------------------------------
def registered_classes(group: str) -> list[str]:
    """Class paths a config may name for ``model`` or ``data``."""
    if group == "model":
        import zoo.models
        from zoo.models.base import EmotionModule

        return [f"zoo.models.{n}" for n in zoo.models.__all__
                if isinstance(getattr(zoo.models, n), type) and issubclass(getattr(zoo.models, n), EmotionModule)
                and getattr(zoo.models, n) is not EmotionModule]
    if group == "data":
        import zoo.data
        from zoo.data.datamodule import EmotionDataModule

        found = []
        for n in zoo.data.__all__:
            obj = getattr(zoo.data, n)
            if isinstance(obj, type) and issubclass(obj, EmotionDataModule):
                found.append(f"zoo.data.{n}")
        subclasses = [c for c in found if not c.endswith(".EmotionDataModule")]
        return subclasses or found
    return []


def help_header(subcommand: str) -> str:
    """Printed above ``fit --help``: model and data options live behind ``--model.help``."""
    models = [c.rsplit(".", 1)[1] for c in registered_classes("model")]
    data = [c.rsplit(".", 1)[1] for c in registered_classes("data")]
    return (f"The model's and the data's options depend on their class and are not listed below. See them with\n"
            f"  {PROG} {subcommand} --model.help {models[0] if models else 'CLASS'}\n"
            f"  {PROG} {subcommand} --data.help {data[0] if data else 'CLASS'}\n"
            f"models (--model / model.class_path): {', '.join(models)}\n"
            f"data (--data / data.class_path):     {', '.join(data)}\n")


def class_options(cls: type) -> list[str]:
    """The keyword arguments ``cls`` accepts, following ``**kwargs`` up its base classes."""
    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        params = list(inspect.signature(klass.__init__).parameters.values())[1:]
        names += [p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in names]
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return names


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


# -- parse errors ---------------------------------------------------------------------------------
def _config_files(argv: list[str]) -> list[str]:
    files = []
    for i, a in enumerate(argv):
        if a in ("--config", "-c") and i + 1 < len(argv):
            files.append(argv[i + 1])
        elif a.startswith("--config="):
            files.append(a.split("=", 1)[1])
    return files


def _where(key: str, group: str | None, argv: list[str]) -> str:
    """' (in FILE)' for the last config file holding ``key`` under ``group``, or ' (on the
    command line)'."""
    def holds(node) -> bool:
        if isinstance(node, dict):
            return key in node or any(holds(v) for v in node.values())
        if isinstance(node, list):
            return any(holds(v) for v in node)
        return False

    if any(a.startswith("--") and (a.split("=", 1)[0].endswith("." + key) or a[2:].split("=", 1)[0] == key)
           for a in argv):
        return " (on the command line)"
    for f in reversed(_config_files(argv)):
        try:
            cfg = yaml.safe_load(Path(f).read_text(encoding="utf-8")) or {}
        except Exception:  # unreadable: jsonargparse reports it on its own
            continue
        if holds(cfg.get(group) if group and isinstance(cfg, dict) else cfg):
            return f" (in {f})"
    return ""


def _where_value(value: str, argv: list[str]) -> str:
    if value in argv:
        return " (on the command line)"
    for f in reversed(_config_files(argv)):
        try:
            if value in Path(f).read_text(encoding="utf-8"):
                return f" (in {f})"
        except OSError:
            continue
    return ""


def _class_named(path: str):
    import importlib

    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except Exception:
        return None


def _range_error(message: str, argv: list[str]) -> str | None:
    """An option outside its range (a :mod:`zoo.ranges` type), in one sentence: the option's full
    name, the range, the value and where it was given."""
    m = re.search(r"Not of type (\w+): (.*?)does not conform to restriction", message)
    if not m:  # not a number at all: "invalid literal for int() with base 10: 'abc'"
        m = re.search(r"Not of type (\w+): [^\n]*?: ('[^'\n]*')", message)
    if not m:
        return None
    from jsonargparse import typing as jtyping

    from zoo import ranges

    t = getattr(ranges, m.group(1), None) or getattr(jtyping, m.group(1), None)
    # the keys from the outermost group down to the option: model -> audio_branch -> dropout
    keys = re.findall(r'Parser key "([\w.]+)"', message[: m.start()])
    if not keys:
        return None
    option = ".init_args.".join(keys)
    value = m.group(2).strip()
    if not value:
        given = re.search(r"Given value: (.*)", message[m.end():])
        value = given.group(1).strip() if given else "?"
    optional = bool(re.search(r"Subtypes: \[[^\]]*" + re.escape(m.group(1)) + r"[^\]]*NoneType", message))
    want = ranges.describe(t) if t is not None else m.group(1)
    return (f"{option} must be {want}{' (or null)' if optional else ''}, got {value}"
            f"{_where(keys[-1].rsplit('.', 1)[-1], keys[0], argv)}")


def check_config_files(argv: list[str]) -> str | None:
    """A ``--config`` file that is not UTF-8 text, not YAML or not a mapping, named with the
    reason (jsonargparse's own errors do not name the file); a missing file is left to it."""
    for f in _config_files(argv):
        p = Path(f)
        if not p.is_file():
            continue
        try:
            text = p.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            return f"--config {f} is not a text file (byte {e.start} is not UTF-8); a config is a YAML text file"
        except OSError as e:
            return f"--config {f} cannot be read: {e.strerror or e}"
        if "\x00" in text:
            return f"--config {f} is not a text file (it holds NUL bytes); a config is a YAML text file"
        try:
            cfg = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            return f"--config {f} is not valid YAML{where}: {problem}"
        if cfg is not None and not isinstance(cfg, dict):
            return (f"--config {f} holds a {type(cfg).__name__}, not a mapping of options "
                    "(e.g. `data:`, `model:`, `trainer:` at the top)")
    return None


def check_parsed(cfg, argv: list[str]) -> str | None:
    """The options of classes the zoo does not own (Lightning's Trainer, torch optimisers, the
    checkpoint and early-stopping callbacks), checked against :mod:`zoo.ranges` once the config is
    parsed: one sentence per option outside its range, or None."""
    from zoo import ranges

    sub = cfg.get("subcommand") if hasattr(cfg, "get") else None
    root = cfg.get(sub) if sub else cfg
    if root is None:
        return None

    def get(node, *path):
        for k in path:
            if node is None:
                return None
            node = node.get(k) if hasattr(node, "get") else getattr(node, k, None)
        return node

    found = []

    def check(node, table, prefix, group):
        if node is None:
            return
        for name, t in table.items():
            value = get(node, name)
            if t is ranges.DeviceCount and isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
                value = int(value)  # Trainer's devices type lists str before int: "0" is the count 0
            if ranges.out_of_range_any(value, t):
                found.append(f"{prefix}{name} must be {ranges.describe_any(t)}, got {value!r}"
                             f"{_where(name, group, argv)}")

    check(get(root, "trainer"), ranges.TRAINER_OPTIONS, "trainer.", "trainer")
    for group, table in ranges.CALLBACK_OPTIONS.items():
        check(get(root, group), table, f"{group}.", group)
    seed = get(root, "seed_everything")
    if not isinstance(seed, bool) and ranges.out_of_range(seed, ranges.Seed):
        found.append(f"seed_everything must be {ranges.describe(ranges.Seed)} (or true / false), got {seed!r}"
                     f"{_where('seed_everything', None, argv)}")
    optimizer = get(root, "model", "init_args", "optimizer")
    if optimizer is not None and get(optimizer, "init_args") is not None:
        check(get(optimizer, "init_args"), ranges.OPTIMIZER_OPTIONS, "model.init_args.optimizer.init_args.", "model")
    return "; ".join(found) if found else None


def format_parse_error(message: str, argv: list[str], subparsers: dict) -> str:
    """jsonargparse's error as one paragraph: what is wrong, where, the closest valid choice."""
    sub = argv[0] if argv and argv[0] in subparsers else None
    prog = f"{PROG} {sub}" if sub else PROG
    m = re.search(r'Parser key "([\w.]+)"', message)
    group = m.group(1) if m else None
    text = _range_error(message, argv)
    if text is None:
        text = _branch_error(message, argv, prog)
    m = re.search(r"Problem with given class_path '([\w.]+)':\s*\n\s*Option '([\w.]+)' is not accepted", message)
    if m and text is None:
        cls = _class_named(m.group(1))
        key = m.group(2)
        valid = class_options(cls) if cls else []
        name = cls.__name__ if cls else m.group(1)
        text = (f"{name} ({group}) has no option '{key}'{_where(key, group, argv)}{_did_you_mean(key, valid)} "
                f"Its options: {prog} --{group}.help {name}")
    if text is None:
        m = re.search(r"Problem with given class_path '([\w.]+)':\s*\n\s*(module '[\w.]+' has no attribute|"
                      r"No module named|.*not a subclass)", message)
        if m and group in ("model", "data"):
            valid = registered_classes(group)
            wrong = m.group(1)
            text = (f"{group}: unknown class_path '{wrong}'{_where_value(wrong, argv)}"
                    f"{_did_you_mean(wrong, valid)} Valid {group} classes: {', '.join(valid)}")
    if text is None:
        m = re.search(r"Group '([\w.]+)' does not accept option '([\w.]+)'", message)
        if m:
            g, key = m.groups()
            parser = subparsers.get(sub)
            valid = [a.dest[len(g) + 1:] for a in (parser._actions if parser else []) if a.dest.startswith(g + ".")]
            text = f"{g} has no option '{key}'{_where(key, g, argv)}{_did_you_mean(key, valid)}"
    if text is None:
        m = re.search(r'Problem with given class_path \'([\w.]+)\':\s*\n\s*Parser key "([\w.]+)":\s*\n\s*'
                      r'Expected a (.*?)\. Got value: (.*)', message)
        if m:
            name, key, want, got = m.groups()
            text = (f"{group}.init_args.{key}: expected {want.replace('<class ', '').replace('>', '')}, "
                    f"got {got.strip()!r}{_where(key, group, argv)}")
    if text is None:
        m = re.search(r'Parser key "config": (.*)', message)
        if m:
            text = f"--config: {m.group(1)[0].lower()}{m.group(1)[1:]}"
    if text is None:
        m = re.search(r"unrecognized arguments: (\S+)", message)
        if m:
            opt = m.group(1).split("=", 1)[0]
            parser = subparsers.get(sub)
            valid = [s for a in (parser._actions if parser else []) for s in a.option_strings]
            text = f"unknown option {opt}{_did_you_mean(opt, valid)}"
    if text is None:  # anything else: jsonargparse's text without the Union bookkeeping
        noise = re.compile(r"^\s*(- )?(Does not validate against any of the Union subtypes|Subtypes:|Errors:|"
                           r"Given value type:|Given value:|Expected a <class 'NoneType'>)")
        text = " ".join(line.strip() for line in message.splitlines() if line.strip() and not noise.match(line))
    text = text.rstrip(". ")
    return (f"{prog}: {text}{'' if text.endswith('?') else '.'}\nSee {prog} --help"
            + ("." if sub is None else " (model and data options: --model.help CLASS, --data.help CLASS)."))


# -- fusion branches ------------------------------------------------------------------------------
BRANCH_FORM = "{class_path: zoo.models.TextBERT, init_args: {pretrained: null}}"


def nested_null_args(argv: list[str]) -> list[str]:
    """``argv`` with ``--A.init_args.B.init_args.KEY null`` (an option of a class inside a class,
    e.g. a fusion branch's) written as ``--A.init_args.B '{"init_args": {"KEY": null}}'``.

    jsonargparse (4.53) re-reads such a value from its text after parsing it once, and None comes
    back as the string ``'None'``; the dict form reaches the inner class as null, merged with its
    other options alike."""
    import json

    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        opt, eq, value = a.partition("=")
        if not eq and i + 1 < len(argv):
            value = argv[i + 1]
        head, _, key = opt.rpartition(".init_args.")
        nested = opt.startswith("--") and ".init_args." in head and key.isidentifier()
        if nested and value.strip() and yaml.safe_load(value) is None:
            out += [head, json.dumps({"init_args": {key: None}})]
            i += 1 if eq else 2
            continue
        out.append(a)
        i += 1
    return out


def _branch_error(message: str, argv: list[str], prog: str) -> str | None:
    """A fusion branch's parse error (a :class:`zoo.models.fusion_branch.ModelSpec` argument) in
    one sentence: the branch, the option or class at fault, where it was given, what would do."""
    m = re.search(r'Parser key "(\w+)":\s*(?:- Expected a path[^\n]*\s*)?-?\s*Type <class '
                  r"'zoo\.models\.fusion_branch\.ModelSpec'> expects a function or a callable class: (.*)",
                  message, re.S)
    if not m:
        return None
    owner = re.search(r'Parser key "(\w+)"', message)
    group = owner.group(1) if owner else "model"
    branch = f"{group}.init_args.{m.group(1)}"
    detail = m.group(2).split("\n    - Expected a <class 'NoneType'>")[0]
    got = re.search(r"class_path='([\w.]+)'", detail)
    cls = _class_named(got.group(1)) if got else None
    name = cls.__name__ if cls else (got.group(1) if got else "")
    option = re.search(r"Option '(\w+)' is not accepted", detail)
    if option and option.group(1) == "class_path" or "Dict must include a class_path" in detail:
        return f"{branch}: a branch is written {BRANCH_FORM} (its options under init_args)"
    if option:
        key = option.group(1)
        valid = [o for o in (class_options(cls) if cls else []) if o not in ("class_names", "sample_rate")]
        return (f"{branch}: {name} has no option '{key}'{_where(key, group, argv)}{_did_you_mean(key, valid)} "
                f"Its options: {prog} --{branch}.help {name}")
    typed = re.search(r'Parser key "(\w+)":\s*Expected a (.*?)\. Got value: (.*?)\. Got value:', detail, re.S)
    if typed:
        key, want, value = typed.groups()
        return (f"{branch}.init_args.{key}: expected {want.replace('<class ', '').replace('>', '').replace('typing.', '')}, got "
                f"{value.strip()!r}{_where(key, group, argv)}")
    wrong = re.search(r"has no attribute '(\w+)'|No module named '([\w.]+)'|Expected '([\w.]+)' to be a subclass",
                      detail)
    if wrong:
        value = re.search(r"Got value: (?:Namespace\(class_path=')?([\w.]+)", detail)
        wrong_path = value.group(1) if value else next(g for g in wrong.groups() if g)
        valid = registered_classes("model")
        return (f"{branch}: unknown class_path '{wrong_path}'{_where_value(wrong_path, argv)}"
                f"{_did_you_mean(wrong_path, valid)} A branch is a zoo model: {', '.join(valid)}; written "
                f"{BRANCH_FORM}")
    return None


# -- output folders --------------------------------------------------------------------------------
def eval_output_dir(eval_dir: str | None, ckpt_path: str | None, subcommand: str) -> Path | None:
    """Where validate/test/predict write: ``eval_dir``, or ``<run>/<command>-<checkpoint name>/``
    for a checkpoint inside a run's ``checkpoints/`` folder; None: the logger decides."""
    if eval_dir:
        return Path(eval_dir)
    if ckpt_path and ckpt_path not in ("best", "last", "hpc", "registry"):
        p = Path(ckpt_path)
        if p.parent.name == "checkpoints":
            return p.parent.parent / f"{subcommand}-{p.stem}"
    return None


def recorded_checkpoint_dirs(ckpt_path: str) -> dict[str, str]:
    """``{callback state key: dirpath}`` as the run that wrote the checkpoint recorded them."""
    import torch

    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # Lightning reports an unreadable checkpoint itself
        return {}
    return {k: v["dirpath"] for k, v in (ckpt.get("callbacks") or {}).items()
            if isinstance(v, dict) and isinstance(v.get("dirpath"), str)}


def root_dir_wins(argv: list[str]) -> bool:
    """Whether ``trainer.default_root_dir`` decides where the run folder goes, over the logger's
    ``save_dir``. The rule: ``--trainer.default_root_dir`` on the command line wins over any
    ``save_dir`` from a config file; a ``save_dir`` on the command line wins over everything (the
    more specific option); otherwise a ``save_dir`` a config file names wins, and where none does,
    the run goes under ``default_root_dir`` (from a config, or the default ``runs``)."""
    def on_command_line(pred) -> bool:
        return any(a.startswith("--") and pred(a[2:].split("=", 1)[0]) for a in argv)

    if on_command_line(lambda k: k.startswith("trainer.logger") and k.endswith("save_dir")):
        return False
    if on_command_line(lambda k: k == "trainer.default_root_dir"):
        return True
    return not _where("save_dir", "trainer", [a for a in argv if a.startswith("--config") or a == "-c"
                                              or not a.startswith("--")])


def one_folder_loggers(logger, root_dir: str, argv: list[str] | None = None):
    """The fit's loggers with a CSV logger first, so config.yaml, metrics.csv, the confusion
    matrix and the checkpoints share one ``runs/zoo/version_N/`` whatever else logs; a wandb
    logger left at the default save_dir writes its files inside that folder too. With ``argv``,
    the CSV / TensorBoard loggers' save_dir follows ``root_dir`` (``trainer.default_root_dir``)
    as :func:`root_dir_wins` says."""
    from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger

    if logger is False or logger is None or logger is True:
        return logger
    loggers = list(logger) if isinstance(logger, (list, tuple)) else [logger]
    if not loggers or not all(isinstance(lg, Logger) for lg in loggers):
        return logger
    if argv is not None and root_dir_wins(argv):
        for lg in loggers:
            # nothing is written before the first log, so the folder can still move (Lightning's
            # loggers keep it in these attributes: CSV in both, TensorBoard in _root_dir)
            if isinstance(lg, (CSVLogger, TensorBoardLogger)) and Path(lg.save_dir) != Path(root_dir):
                log.info("runs go under trainer.default_root_dir %s (not the logger's save_dir %s)",
                         root_dir, lg.save_dir)
                lg._root_dir = str(root_dir)
                if isinstance(lg, CSVLogger):
                    lg._save_dir = str(root_dir)
    if isinstance(loggers[0], (CSVLogger, TensorBoardLogger)):
        first = loggers[0]
    else:
        first = next((lg for lg in loggers if isinstance(lg, CSVLogger)), None) or CSVLogger(root_dir, name="zoo")
        loggers = [first, *[lg for lg in loggers if lg is not first]]
    run_dir = Path(first.log_dir)
    for lg in loggers:
        if isinstance(lg, WandbLogger) and lg._save_dir in (None, ".", root_dir, str(Path(root_dir))):
            run_dir.mkdir(parents=True, exist_ok=True)
            lg._save_dir = lg._wandb_init["dir"] = str(run_dir)  # wandb reads it at its first log
    return loggers if len(loggers) > 1 else loggers[0]


def adapt_monitors(trainer, model) -> None:
    """A dimension-only model has no val/UA: the best checkpoint and early stopping watch what the
    model names instead (``model.monitor``: val/CCC_mean), when they were left on val/UA."""
    want = getattr(model, "monitor", "val/UA")
    if want == "val/UA":
        return
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    for cb in trainer.callbacks:
        if isinstance(cb, (ModelCheckpoint, EarlyStopping)) and cb.monitor == "val/UA":
            cb.monitor = want  # both stay mode max: a higher CCC is better, as a higher UA
            if isinstance(cb, ModelCheckpoint) and cb.filename and "val/UA" in cb.filename:
                cb.filename = cb.filename.replace("-UA{val/UA", "-CCC{" + want).replace("{val/UA", "{" + want)
            logging.getLogger("zoo").info(
                "%s: the model predicts no categories (targets: %s), so it monitors %s instead of val/UA",
                type(cb).__name__, ", ".join(model.targets), want)
