"""Building and loading zoo models: a checkpoint written by ``python -m zoo fit``
(:func:`load_module`), and a model from a ``{class_path, init_args}`` spec (:func:`module_spec`,
:func:`build_module`, as a fusion model records its branches)."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import torch

from .base import EmotionModule


def load_module(path: str, map_location: str | torch.device = "cpu", *, trust: bool = False) -> EmotionModule:
    """A zoo model from a checkpoint written by ``python -m zoo fit`` (its class is recorded in it).

    The file is unpickled with ``weights_only=True``: tensors, numbers, strings and containers
    only, so a crafted checkpoint cannot run code on load. ``trust=True`` lifts that restriction
    for a checkpoint that holds other Python objects and whose source you trust.
    """
    import io
    import pickle

    from ..errors import ZooUserError

    if not Path(path).is_file():
        raise ZooUserError(f"checkpoint not found: {path}")
    data = Path(path).read_bytes()
    if not (data[:4] == b"PK\x03\x04" or data[:1] == b"\x80"):  # torch.save: a zip (or an old pickle)
        raise ZooUserError(f"{path} is not a checkpoint: python -m zoo fit writes a zip archive (torch.save), "
                           f"and this file ({len(data)} bytes) starts with {data[:8].hex(' ') or 'nothing'}")
    weights_only = not trust
    try:
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=weights_only)
    except pickle.UnpicklingError as e:
        raise ZooUserError(
            f"{path} holds pickled Python objects beyond weights and settings, which could run "
            f"arbitrary code when loaded. Load it only if you trust its source: zoo.load(..., "
            f"trust=True) or --trust.\n  ({str(e).splitlines()[0]})") from e
    except Exception as e:
        raise ZooUserError(f"cannot read the checkpoint {path}: {e}") from e
    class_path = ckpt.get("hyper_parameters", {}).get("_class_path") if isinstance(ckpt, dict) else None
    if not class_path:
        raise ZooUserError(f"{path} does not record which model class wrote it (train it with python -m zoo fit)")
    # the class is resolved here: Lightning drops `_class_path` for a base class without **kwargs
    cls = _resolve_model_class(class_path)
    try:
        with _own_hparams():
            model = cls.load_from_checkpoint(io.BytesIO(data), map_location=map_location,
                                             weights_only=weights_only)
    except Exception as e:
        raise ZooUserError(f"cannot load the zoo checkpoint {path}: {e}") from e
    return model


def module_spec(model: EmotionModule) -> dict:
    """The class path and init args that rebuild ``model`` (without its weights)."""
    args = {k: v for k, v in model.checkpoint_hparams(dict(model.hparams)).items()
            if k not in ("class_names", "sample_rate") and not k.startswith("_")}
    return {"class_path": f"{type(model).__module__}.{type(model).__name__}", "init_args": args}


def build_module(spec: dict, **fixed) -> EmotionModule:
    """Instantiate ``{"class_path": ..., "init_args": {...}}`` (a zoo model), adding ``fixed``
    arguments such as class_names; a bare class name is looked up in ``zoo.models``."""
    from ..errors import ZooUserError

    path = spec.get("class_path")
    if not path:
        raise ZooUserError(f"a model spec needs a class_path, got {spec!r}")
    cls = _resolve_model_class(path)
    with _own_hparams():
        return cls(**{**dict(spec.get("init_args") or {}), **fixed})


def _resolve_model_class(path: str) -> type[EmotionModule]:
    """A zoo model class by dotted path (``zoo.models.AudioCNN``) or bare name (``AudioCNN``)."""
    import importlib

    from ..errors import ZooUserError

    module, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module or "zoo.models"), name)
    except (ImportError, AttributeError) as e:
        raise ZooUserError(f"unknown model class {path!r}: {e}") from e
    if not (isinstance(cls, type) and issubclass(cls, EmotionModule)):
        raise ZooUserError(f"{path!r} is not a zoo model (a subclass of zoo.models.EmotionModule)")
    return cls


@contextmanager
def _own_hparams():
    """A model built inside another's __init__ (a fusion branch) records its own init args:
    LightningCLI's context would otherwise hand it the outer model's hyper-parameters."""
    from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters

    token = _given_hyperparameters.set(None)
    try:
        yield
    finally:
        _given_hyperparameters.reset(token)
