"""Command line: ``python -m zoo {fit,validate,test,predict} --config ...`` (LightningCLI) plus
the zoo's own commands (``synth``). Heavy libraries load only for the command that needs them."""
from __future__ import annotations

import logging
import os
import sys
import textwrap
from pathlib import Path
from typing import Optional

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
# command -> (module whose ``main(argv)`` runs it, one line of help); imported only when run
EXTRA_COMMANDS = {
    "synth": ("zoo.data.synth.command",
              "generate the synthetic Korean corpus in the AI Hub layout (python -m zoo synth --help)"),
    "manifest": ("zoo.data.export_manifest",
                 "write a registered corpus as a manifest CSV (python -m zoo manifest --help)"),
    "check": ("zoo.check",
              "scan a corpus as configured, without training: audio, labels, splits, leakage (python -m zoo check --help)"),
    "infer": ("zoo.inference.commands",
              "label audio files, folders or globs with a checkpoint (python -m zoo infer --help)"),
    "checkpoints": ("zoo.inference.commands",
                    "the table of pretrained checkpoints in the registry"),
    "export": ("zoo.inference.commands",
               "export a checkpoint to a Hugging Face directory or ONNX (python -m zoo export --help)"),
    "demo": ("zoo.inference.commands",
             "a local web page to try a model on (gradio; python -m zoo demo --help)"),
    "listen": ("zoo.live.listen",
               "live emotion recognition from the microphone or a file (python -m zoo listen --help)"),
    "segeval": ("zoo.live.evaluate",
                "score VAD segments against fixed windows on joined test utterances (python -m zoo segeval --help)"),
    "serve": ("zoo.live.serve",
              "serve a model: live page, WebSocket /stream, POST /predict (python -m zoo serve --help)"),
    "ablate": ("zoo.ablate",
               "run an ablation grid and write results.csv, summary.md and plots (python -m zoo ablate --help)"),
}

USAGE = f"""\
usage: python -m zoo COMMAND [options]

A PyTorch Lightning model zoo for speech emotion recognition.

Training and evaluation (LightningCLI; every option is documented by `python -m zoo fit --help`):
  fit        train a model:        python -m zoo fit --config configs/demo.yaml
  validate   evaluate on val split: python -m zoo validate --config ... --ckpt_path ...
  test       evaluate on test split (WA / UA / macro-F1, confusion matrix)
  predict    class probabilities for a split, written to predictions.jsonl beside the checkpoint's run

Other commands:
{chr(10).join(f"  {k:11s} {v[1]}" for k, v in EXTRA_COMMANDS.items())}

Configs combine: --config configs/data/synthetic.yaml --config configs/model/audio_cnn.yaml
Print the resolved config with --print_config. A fit without trainer.max_epochs trains for 20 epochs;
--early_stopping.enabled true stops it when val/UA stalls.
"""


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (it may be swapped, e.g. under pytest)."""

    def emit(self, record):
        self.stream = sys.stderr
        super().emit(record)


def _setup_logging() -> None:
    logger = logging.getLogger("zoo")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        h = _StderrHandler()
        h.setFormatter(logging.Formatter("[zoo] %(message)s"))
        logger.addHandler(h)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _user_error(e: BaseException) -> None:
    print("zoo: error: " + textwrap.indent(str(e), "  ").lstrip(), file=sys.stderr)
    raise SystemExit(2)


class _OutermostOnly:
    """An instantiator that calls ``inner`` for the outermost object only; objects built while it
    runs (a fusion model's branches) are built plainly."""

    def __init__(self, inner):
        self.inner, self.depth = inner, 0

    def __call__(self, class_type, *args, applied_instantiation_links: dict | None = None, **kwargs):
        if self.depth:
            return class_type(*args, **kwargs)
        self.depth += 1
        try:
            return self.inner(class_type, *args, applied_instantiation_links=applied_instantiation_links or {},
                              **kwargs)
        finally:
            self.depth -= 1


def build_cli(args: list[str] | None = None, run: bool = True):
    """The LightningCLI with the zoo's base classes in subclass mode (tests call this)."""
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

    from zoo.data.legacy import check_args

    check_args(list(sys.argv[1:] if args is None else args))  # old per-corpus DataModule configs
    import zoo.data.corpora  # noqa: F401  (registers the corpora: `corpus: RAVDESS` resolves)
    import zoo.models  # noqa: F401  (registers the model families)
    from zoo import cli_support
    from zoo.callbacks import EarlyStopping, EpochSummary, FiniteLossCheck, PredictionWriter
    from zoo.checkpointing import ResumeState
    from zoo.data.datamodule import EmotionDataModule
    from zoo.models.base import EmotionModule

    argv = list(sys.argv[1:] if args is None else args)
    if argv and argv[0] in LIGHTNING_COMMANDS and any(a in ("-h", "--help") for a in argv[1:]):
        print(cli_support.help_header(argv[0]))

    class ZooParser(LightningArgumentParser):
        zoo_cli = None  # set on the zoo's own parsers (not on jsonargparse's internal ones)

        def parse_args(self, args=None, *a, **kw):
            if self.zoo_cli is not None:  # e.g. a fusion branch's option set to null
                args = cli_support.nested_null_args(list(sys.argv[1:] if args is None else args))
                if problem := cli_support.check_config_files(args):
                    self.error(problem)
            cfg = super().parse_args(args, *a, **kw)
            if self.zoo_cli is not None and (problem := cli_support.check_parsed(cfg, argv)):
                self.error(problem)  # Trainer / optimiser options out of range: before any run folder
            return cfg

        def error(self, message, ex=None):
            if self.zoo_cli is None or not self.exit_on_error:
                return super().error(message, ex)
            # the error first, in one paragraph, instead of 80 lines of usage
            sys.stderr.write("zoo: error: " + cli_support.format_parse_error(
                message, argv, getattr(self.zoo_cli, "_subcommand_parsers", {})) + "\n")
            self.exit(2)

    class ZooCLI(LightningCLI):
        def setup_parser(self, *a, **kw):
            super().setup_parser(*a, **kw)
            for parser in (self.parser, *getattr(self, "_subcommand_parsers", {}).values()):
                parser.zoo_cli = self

        def add_arguments_to_parser(self, parser):
            # class names and sample rate flow from the data into the model: never typed twice
            parser.link_arguments("data.class_names", "model.init_args.class_names", apply_on="instantiate")
            parser.link_arguments("data.sample_rate", "model.init_args.sample_rate", apply_on="instantiate")
            parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
            # Lightning >= 2.6 writes save_last's last.ckpt only when a top-k file is written, so
            # the latest epoch gets a checkpoint callback of its own (unmonitored, overwritten)
            parser.add_lightning_class_args(ModelCheckpoint, "last_checkpoint")
            parser.set_defaults({
                "checkpoint.monitor": "val/UA", "checkpoint.mode": "max", "checkpoint.save_last": False,
                "checkpoint.filename": "best-epoch{epoch:02d}-UA{val/UA:.3f}",
                "checkpoint.auto_insert_metric_name": False,
                "last_checkpoint.monitor": None, "last_checkpoint.save_top_k": 1,
                "last_checkpoint.filename": "last", "last_checkpoint.enable_version_counter": False,
            })
            parser.add_lightning_class_args(EarlyStopping, "early_stopping")
            parser.add_lightning_class_args(EpochSummary, "summary")
            parser.add_lightning_class_args(FiniteLossCheck, "finite_loss")
            parser.add_lightning_class_args(ResumeState, "resume")
            parser.add_lightning_class_args(PredictionWriter, "predictions")
            parser.add_argument(
                "--test_after_fit", type=bool, default=False,
                help="After fit, evaluate the best checkpoint (by val/UA) on the test split.")
            parser.add_argument(
                "--eval_dir", type=Optional[str], default=None,
                help="validate / test / predict: the folder for metrics.csv, the confusion matrix and "
                     "predictions. null: <run>/<command>-<checkpoint name>/ beside a checkpoint that lies in "
                     "a run's checkpoints/ folder (else a new runs/zoo/version_N/). Ignored by fit.")

        def _add_instantiators(self):
            super()._add_instantiators()
            # Lightning's model instantiator hands the configured model's config to
            # save_hyperparameters of whatever EmotionModule it builds, and jsonargparse routes a
            # fusion branch (a zoo model too, built inside the fusion model's __init__) through it:
            # the branch must record its own init args, so only the outermost call goes to Lightning
            registered = self.parser._instantiators
            key = next(k for k in registered if k[0] is EmotionModule)
            registered[key] = _OutermostOnly(registered[key])

        def before_instantiate_classes(self):
            if self.subcommand != "fit":
                return
            t = self.config.fit.trainer
            if t.max_epochs is None and t.max_steps in (None, -1) and t.max_time is None and not t.fast_dev_run:
                # Lightning's default is 1000 epochs; saved in config.yaml like any other value
                t.max_epochs = cli_support.DEFAULT_MAX_EPOCHS
                logging.getLogger("zoo").info(
                    "trainer.max_epochs is not set: training for %d epochs (set --trainer.max_epochs N, or "
                    "stop when val/UA stalls with --early_stopping.enabled true)", t.max_epochs)

        def before_fit(self):
            cli_support.adapt_monitors(self.trainer, self.model)
            if getattr(self.model, "cross_fit", 0):  # late fusion's out-of-fold branch outputs (stacking)
                from zoo.crossfit import cross_fit

                cross_fit(self.model, self.datamodule, self.trainer)

        def instantiate_trainer(self, **kwargs):
            sub = self.subcommand
            trainer_cfg = self._get(self.config_init, "trainer", default={})
            if sub in cli_support.EVAL_COMMANDS:
                ckpt = self._get(self.config, "ckpt_path")
                out = cli_support.eval_output_dir(self._get(self.config, "eval_dir"), ckpt, sub)
                if out is not None:
                    from lightning.pytorch.loggers import CSVLogger

                    kwargs["logger"] = CSVLogger(str(out.parent), name="", version=out.name)
                    # the checkpoint callbacks keep the folder the run recorded: nothing moved
                    recorded = cli_support.recorded_checkpoint_dirs(ckpt) if ckpt else {}
                    for key in ("checkpoint", "last_checkpoint"):
                        cb = self._get(self.config_init, key)
                        if cb is not None and cb.dirpath is None:
                            cb.dirpath = recorded.get(cb.state_key, str(Path(ckpt).parent))
            elif sub == "fit":
                kwargs["logger"] = cli_support.one_folder_loggers(
                    trainer_cfg.get("logger"), trainer_cfg.get("default_root_dir") or "runs", argv)
                if self._get(self.config, "ckpt_path") == "last":
                    self._resume_in_last_run(kwargs["logger"])
            from zoo.checkpointing import AtomicCheckpointIO, has_checkpoint_io

            plugins = trainer_cfg.get("plugins")
            if not has_checkpoint_io(plugins):  # checkpoints written atomically on any file system
                items = list(plugins) if isinstance(plugins, (list, tuple)) else [plugins] if plugins else []
                kwargs["plugins"] = [*items, AtomicCheckpointIO()]
            return super().instantiate_trainer(**kwargs)

        def _resume_in_last_run(self, logger):
            """``fit --ckpt_path last``: continue the newest run folder from its newest checkpoint
            (``last.ckpt`` or ``sigterm.ckpt``), writing into that folder, so the checkpoint
            callbacks get their full state back (best score, best path) as if never stopped."""
            from lightning.pytorch.loggers import CSVLogger

            from zoo.checkpointing import find_resume_checkpoint

            first = (logger[0] if isinstance(logger, (list, tuple)) else logger)
            if not isinstance(first, CSVLogger):
                return  # Lightning's own "last" lookup applies
            ckpt = find_resume_checkpoint(Path(first.save_dir) / (first.name or ""))
            if ckpt is None:
                logging.getLogger("zoo").warning(
                    "--ckpt_path last: no last.ckpt or sigterm.ckpt under %s; training from the start",
                    Path(first.save_dir) / (first.name or ""))
                self.config_init[self.subcommand]["ckpt_path"] = None
                return
            run = ckpt.parent.parent
            first._version = int(run.name[len("version_"):])
            old = run / "metrics.csv"
            if old.is_file():  # the CSV logger starts a new file: keep the rows written before
                n = len(list(run.glob("metrics.before-resume-*.csv"))) + 1
                old.rename(run / f"metrics.before-resume-{n}.csv")
            self.config_init[self.subcommand]["ckpt_path"] = str(ckpt)
            logging.getLogger("zoo").info("resuming %s from %s", run, ckpt)

        def after_fit(self):
            if self.config[self.subcommand].get("test_after_fit"):
                ckpt = "best" if self.trainer.checkpoint_callback and \
                    self.trainer.checkpoint_callback.best_model_path else None
                self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=ckpt)
            self._summary()

        def _summary(self):
            from zoo.callbacks import print_run_summary

            from zoo.models.plots import run_dir

            run = run_dir(self.trainer)
            config = run / "config.yaml"
            # where the run's data stands in for a real corpus (the demo: AI Hub), how to train on that
            corpus = getattr(self.datamodule, "corpus", None)
            real = corpus.stands_in_for() if corpus is not None else None
            real_data = (f"--data.corpus.{real[0]} {real[1]}", f"the same recipe on {real[2]}") if real else None
            print_run_summary(self.trainer, str(config) if config.exists() else None, real_data)

    return ZooCLI(
        EmotionModule,
        EmotionDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={
            "default_root_dir": "runs",
            "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                       "init_args": {"save_dir": "runs", "name": "zoo"}},
        },
        parser_class=ZooParser,
        parser_kwargs={"prog": "python -m zoo"},
        args=args,
        run=run,
    )


def _user_error_in(e: BaseException):
    """The ZooUserError behind ``e`` (jsonargparse wraps errors raised while instantiating)."""
    from zoo.errors import ZooUserError

    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, ZooUserError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def main(argv: list[str] | None = None) -> None:
    explicit = argv is not None
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return
    cmd = argv[0]
    _setup_logging()
    os.environ.setdefault("WANDB_MODE", "offline")  # never ask for a login or the network
    from zoo.errors import ZooUserError

    try:
        if cmd in EXTRA_COMMANDS:
            import importlib

            mod = importlib.import_module(EXTRA_COMMANDS[cmd][0])
            # a module serving several commands exposes main_<command>
            (getattr(mod, f"main_{cmd}", None) or mod.main)(argv[1:])
        elif cmd in LIGHTNING_COMMANDS:
            if any(a in ("-h", "--help") for a in argv[1:]):  # the option list takes ~10 s to build
                print("[zoo] loading Lightning and the model classes to list the options (about 10 s) ...",
                      file=sys.stderr, flush=True)
            try:
                build_cli(argv if explicit else None)
            except ZooUserError:
                raise
            except SystemExit as e:
                if type(e).__name__ == "SIGTERMException":  # pre-empted: not a success
                    print("zoo: stopped by SIGTERM (resume with --ckpt_path last)", file=sys.stderr)
                    raise SystemExit(143) from None
                raise
            except Exception as e:
                found = _user_error_in(e)
                if found is None:
                    from zoo.checkpointing import disk_full_error

                    found = disk_full_error(e)  # a full disk: one paragraph naming the folder
                if found is None:
                    raise
                _user_error(found)
        else:
            print(USAGE, file=sys.stderr)
            print(f"zoo: error: unknown command {cmd!r}", file=sys.stderr)
            raise SystemExit(2)
    except ZooUserError as e:
        _user_error(e)
