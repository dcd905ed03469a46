"""A fusion model's branch as a typed model spec.

``audio_branch`` / ``text_branch`` are typed :class:`ModelSpec`: a zoo model class that the
fusion model calls with the class names and sample rate it got from the data. LightningCLI
(jsonargparse) takes the branch as ``{class_path, init_args}``, checks every ``init_args`` key,
type and value against that class's ``__init__`` (without ``class_names`` and ``sample_rate``,
which the fusion model passes), documents it (``--model.init_args.audio_branch.help AudioCNN``)
and hands the model a factory of the branch. From Python a branch is a model class
(``audio_branch=AudioCNN``), a factory such as ``functools.partial(AudioCNN, hidden=32)``, or a
spec dict ``{"class_path": ..., "init_args": {...}}`` (what checkpoints record).
"""
from __future__ import annotations

from typing import Protocol

from ..errors import ZooUserError
from .base import EmotionModule
from .loading import _own_hparams, build_module, module_spec


class ModelSpec(Protocol):
    """A zoo model class (``class_path`` + ``init_args`` in a config) to be built with the data's
    ``class_names`` and ``sample_rate``, which the enclosing model passes."""

    def __call__(self, *, class_names: list[str], sample_rate: int) -> EmotionModule: ...


def build_branch(owner: EmotionModule, key: str, spec) -> EmotionModule:
    """The branch ``owner.<key>`` describes: ``spec`` (a :class:`ModelSpec` or a spec dict) built
    with the owner's class names and sample rate. A class or factory is recorded among the owner's
    hyper-parameters as the spec dict that rebuilds it (checkpoints hold plain values)."""
    fixed = {"class_names": owner.class_names, "sample_rate": owner.sample_rate}
    if isinstance(spec, dict):
        return build_module(spec, **fixed)
    if not callable(spec):
        raise ZooUserError(f"{key}: expected a model spec ({{class_path: zoo.models.X, init_args: {{...}}}}), "
                           f"got {spec!r}")
    # its own init args are its hyper-parameters, not the enclosing model's (see _own_hparams)
    with _own_hparams():
        model = spec(**fixed)
    if not isinstance(model, EmotionModule):
        raise ZooUserError(f"{key}: {type(model).__name__} is not a zoo model (zoo.models.EmotionModule)")
    owner._record_hparam(key, module_spec(model))
    return model
