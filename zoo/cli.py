"""Command line: ``python -m zoo {fit,validate,test,predict} --config ...`` (LightningCLI) plus
the zoo's own commands (``synth``). Heavy libraries load only for the command that needs them."""
from __future__ import annotations

import logging
import os
import sys
import textwrap

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
# command -> (module whose ``main(argv)`` runs it, one line of help); imported only when run
EXTRA_COMMANDS = {
    "synth": ("zoo.data.synthetic",
              "generate the synthetic Korean corpus in the AI Hub layout (python -m zoo synth --help)"),
    "manifest": ("zoo.data.export_manifest",
                 "write a registered corpus as a manifest CSV (python -m zoo manifest --help)"),
    "infer": ("zoo.inference.commands",
              "label audio files, folders or globs with a checkpoint (python -m zoo infer --help)"),
    "checkpoints": ("zoo.inference.commands",
                    "the table of pretrained checkpoints in the registry"),
    "export": ("zoo.inference.commands",
               "export a checkpoint to a Hugging Face directory or ONNX (python -m zoo export --help)"),
    "demo": ("zoo.inference.commands",
             "a local web page to try a model on (gradio; python -m zoo demo --help)"),
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
  predict    class probabilities for a split, written to predictions.jsonl (--predictions.path)

Other commands:
{chr(10).join(f"  {k:11s} {v[1]}" for k, v in EXTRA_COMMANDS.items())}

Configs combine: --config configs/data/synthetic.yaml --config configs/model/audio_cnn.yaml
Print the resolved config with --print_config.
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


def build_cli(args: list[str] | None = None, run: bool = True):
    """The LightningCLI with the zoo's base classes in subclass mode (tests call this)."""
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.cli import LightningCLI

    from zoo.data.legacy import check_args

    check_args(list(sys.argv[1:] if args is None else args))  # old per-corpus DataModule configs
    import zoo.data.corpora  # noqa: F401  (registers the corpora: `corpus: RAVDESS` resolves)
    import zoo.models  # noqa: F401  (registers the model families)
    from zoo.callbacks import EpochSummary, PredictionWriter
    from zoo.data.datamodule import EmotionDataModule
    from zoo.models.base import EmotionModule

    class ZooCLI(LightningCLI):
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
            parser.add_lightning_class_args(EpochSummary, "summary")
            parser.add_lightning_class_args(PredictionWriter, "predictions")
            parser.add_argument(
                "--test_after_fit", type=bool, default=False,
                help="After fit, evaluate the best checkpoint (by val/UA) on the test split.")

        def after_fit(self):
            if self.config[self.subcommand].get("test_after_fit"):
                ckpt = "best" if self.trainer.checkpoint_callback and \
                    self.trainer.checkpoint_callback.best_model_path else None
                self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=ckpt)

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
        args=args,
        run=run,
    )


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
            build_cli(argv if explicit else None)
        else:
            print(USAGE, file=sys.stderr)
            print(f"zoo: error: unknown command {cmd!r}", file=sys.stderr)
            raise SystemExit(2)
    except ZooUserError as e:
        _user_error(e)
