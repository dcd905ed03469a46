"""The valid range of every numeric option, as types jsonargparse checks when a config is read.

An option typed ``batch_size: PositiveInt`` is refused by the CLI while the config is parsed (before
any file is read or run folder made), and ``--help`` shows its type. The types are jsonargparse's
own (``PositiveInt``, ``NonNegativeFloat``, ``ClosedUnitInterval``, ...) plus a few made the same way
(:func:`jsonargparse.typing.restricted_number_type`). A parsed value is an instance of the type (an
``int`` / ``float`` subclass by jsonargparse's default): this module has jsonargparse hand the builtin
``int`` / ``float`` instead, so no range type reaches a checkpoint (:func:`plain` converts values
made elsewhere).

``python -m zoo check`` does not import Lightning, so it cannot read the DataModule's signature:
:data:`DATA_OPTIONS` repeats the DataModule's ranges for it (a test keeps both the same).
:data:`TRAINER_OPTIONS` and :data:`OPTIMIZER_OPTIONS` cover the options of classes the zoo does not
own (Lightning's Trainer, torch optimisers): the CLI checks them after parsing.

Imports jsonargparse's typing module only, so every layer may use it.
"""
from __future__ import annotations

import types
from typing import Any, Literal, Union, get_args, get_origin

from jsonargparse.typing import (  # noqa: F401  (re-exported: the zoo's signatures import them from here)
    ClosedUnitInterval,
    NonNegativeFloat,
    NonNegativeInt,
    OpenUnitInterval,
    PositiveFloat,
    PositiveInt,
    register_type,
    restricted_number_type,
)

#: a share, a dropout probability, a fraction of the corpus: 0 allowed, 1 not
Fraction = restricted_number_type("Fraction", float, [(">=", 0.0), ("<", 1.0)], docstring="a number in [0, 1)")
#: e.g. the number of folds
AtLeastTwo = restricted_number_type("AtLeastTwo", int, (">=", 2), docstring="an integer >= 2")
#: numpy's and Lightning's seeds: 32-bit unsigned
Seed = restricted_number_type("Seed", int, [(">=", 0), ("<=", 2 ** 32 - 1)],
                              docstring="an integer in [0, 4294967295]")
#: Lightning's "no limit" is -1 (max_epochs, max_steps, num_sanity_val_steps)
MinusOneOrMore = restricted_number_type("MinusOneOrMore", int, (">=", -1), docstring="an integer >= -1")
#: Lightning's device count: -1 (all) or a positive count (a list of indices or "auto" are not numbers)
DeviceCount = restricted_number_type("DeviceCount", int, [(">=", -1), ("!=", 0)],
                                     docstring="an integer >= -1 and != 0")
#: IEMOCAP's sessions are numbered 1 to 5
IemocapSession = restricted_number_type("IemocapSession", int, [(">=", 1), ("<=", 5)],
                                        docstring="an integer in [1, 5]")

def _plain_values(t: type) -> None:
    """Let jsonargparse hand a parsed value of ``t`` over as the builtin ``int`` / ``float`` (range
    checked as before). Its default hands an instance of ``t``, which then reaches models'
    hyper-parameters (also through ``load_from_checkpoint``, which parses them again) and makes a
    checkpoint that no longer loads with ``weights_only``."""
    def deserialize(value, t=t):
        return t._type(t(value))

    def is_valid(value, _t=None, t=t):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        try:
            t(value)
        except (ValueError, TypeError):
            return False
        return True

    register_type(t, t._type, deserialize, type_check=is_valid)


_UNIONS = (Union, types.UnionType)
_SYMBOL = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "eq": "==", "ne": "!="}


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _bounds(t: type) -> list[tuple[str, float]]:
    return [(_SYMBOL.get(op.__name__, op.__name__), ref) for op, ref in getattr(t, "_restrictions", [])]


def describe(t: Any) -> str:
    """``"an integer > 0"``, ``"a number in [0, 1)"``, ``"null or an integer > 0"``: the range of a
    restricted type (or of an Optional / list of one), as the error messages and docs say it."""
    origin = get_origin(t)
    if origin in _UNIONS:
        parts = [a for a in get_args(t) if a is not type(None)]
        inner = " or ".join(describe(a) for a in parts)
        return f"null or {inner}" if len(parts) < len(get_args(t)) else inner
    if origin is Literal:
        return "one of " + ", ".join(map(str, get_args(t)))
    if origin is dict:
        return f"a mapping to {describe(get_args(t)[1]).replace('an integer', 'integers').replace('a number', 'numbers')}"
    if origin in (list, tuple):
        args = [a for a in get_args(t) if a is not Ellipsis]
        return f"a list of {describe(args[0]).replace('an integer', 'integers').replace('a number', 'numbers')}" \
            if args else "a list"
    bounds = _bounds(t)
    kind = "an integer" if getattr(t, "_type", t) is int else "a number"
    if not bounds:
        return kind
    if len(bounds) == 2 and bounds[0][0] in (">", ">=") and bounds[1][0] in ("<", "<="):
        lo, hi = bounds
        return (f"{kind} in {'[' if lo[0] == '>=' else '('}{_num(lo[1])}, {_num(hi[1])}"
                f"{']' if hi[0] == '<=' else ')'}")
    return kind + " " + " and ".join(f"{op} {_num(ref)}" for op, ref in bounds)


def is_ranged(t: Any) -> bool:
    """Whether ``t`` (or a type inside an Optional / list) carries a range."""
    if get_origin(t) in (*_UNIONS, list, tuple, dict):
        return any(is_ranged(a) for a in get_args(t))
    return bool(_bounds(t))


def out_of_range(value: Any, t: Any) -> bool:
    """Whether ``value`` lies outside the range ``t`` declares (values of another kind, e.g. a
    string where a number belongs, are left to the type check that reports them)."""
    if value is None:
        return False
    origin = get_origin(t)
    if origin in _UNIONS:
        ranged = [a for a in get_args(t) if a is not type(None) and is_ranged(a)]
        return bool(ranged) and all(out_of_range(value, a) for a in ranged)
    if origin is dict:
        return isinstance(value, dict) and any(out_of_range(v, get_args(t)[1]) for v in value.values())
    if origin in (list, tuple):
        args = [a for a in get_args(t) if a is not Ellipsis]
        return isinstance(value, (list, tuple)) and bool(args) and any(out_of_range(v, args[0]) for v in value)
    if not _bounds(t) or isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        t(value)
    except (ValueError, TypeError):
        return True
    return False


def plain(value: Any) -> Any:
    """A parsed value of a restricted type as the builtin ``int`` / ``float`` (lists too)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and type(value) is not int:
        return int(value)
    if isinstance(value, float) and type(value) is not float:
        return float(value)
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        return type(value)(plain(v) for v in value)
    if type(value) is dict:
        return {k: plain(v) for k, v in value.items()}
    return value


def check_options(options: dict, ranges: dict[str, Any], prefix: str = "") -> list[str]:
    """One sentence per option of ``options`` outside its range in ``ranges``:
    ``"data.batch_size must be an integer > 0, got 0"``."""
    found = []
    for name, t in ranges.items():
        if name in options and out_of_range(options[name], t):
            found.append(f"{prefix}{name} must be {describe(t)}, got {options[name]!r}")
    return found


# -- ranges of options a signature cannot carry ---------------------------------------------------

#: EmotionDataModule's ranges, for ``python -m zoo check`` (which reads configs without Lightning);
#: tests/test_reliability.py checks these are the DataModule's signature types
DATA_OPTIONS: dict[str, Any] = {
    "min_agreement": ClosedUnitInterval,
    "seed": Seed,
    "sample_rate": PositiveInt,
    "max_seconds": Union[PositiveFloat, None],
    "min_seconds": NonNegativeFloat,
    "batch_size": PositiveInt,
    "eval_batch_size": Union[PositiveInt, None],
    "num_workers": NonNegativeInt,
    "prefetch_factor": Union[PositiveInt, None],
}

#: Lightning's Trainer options (typed plain int / float there), checked after the config is parsed.
#: Each value is a range type, or a tuple of alternatives (an int count or a float share).
_SHARE_OR_COUNT = (NonNegativeInt, ClosedUnitInterval)
TRAINER_OPTIONS: dict[str, Any] = {
    "max_epochs": MinusOneOrMore,
    "min_epochs": NonNegativeInt,
    "max_steps": MinusOneOrMore,
    "min_steps": NonNegativeInt,
    "check_val_every_n_epoch": PositiveInt,
    "log_every_n_steps": PositiveInt,
    "accumulate_grad_batches": PositiveInt,
    "gradient_clip_val": NonNegativeFloat,
    "num_sanity_val_steps": MinusOneOrMore,
    "num_nodes": PositiveInt,
    "limit_train_batches": _SHARE_OR_COUNT,
    "limit_val_batches": _SHARE_OR_COUNT,
    "limit_test_batches": _SHARE_OR_COUNT,
    "limit_predict_batches": _SHARE_OR_COUNT,
    "overfit_batches": _SHARE_OR_COUNT,
    "val_check_interval": (PositiveInt, restricted_number_type(
        "PositiveShare", float, [(">", 0.0), ("<=", 1.0)], docstring="a number in (0, 1]")),
    "devices": DeviceCount,
    "fast_dev_run": NonNegativeInt,  # true / false pass (a bool is not checked as a number)
    "reload_dataloaders_every_n_epochs": NonNegativeInt,
}

#: numeric options of the Trainer and the callbacks that have no range worth checking, with why
#: (tests/test_reliability.py enumerates the classes' signatures against these tables)
UNRANGED_OPTIONS: dict[tuple[str, str], str] = {
    ("Trainer", "max_time"): "a duration (\"DD:HH:MM:SS\", a timedelta or a dict of units), parsed by Lightning",
    ("EarlyStopping", "stopping_threshold"): "a value of the monitored metric: any number",
    ("EarlyStopping", "divergence_threshold"): "a value of the monitored metric: any number",
}

#: torch optimisers' options (``model.init_args.optimizer.init_args``), checked after parsing
OPTIMIZER_OPTIONS: dict[str, Any] = {
    "lr": PositiveFloat,
    "weight_decay": NonNegativeFloat,
    "momentum": NonNegativeFloat,
    "eps": PositiveFloat,
    "betas": list[Fraction],
}

#: the zoo's callbacks' options that Lightning's classes type as plain int / float
CALLBACK_OPTIONS: dict[str, dict[str, Any]] = {
    "early_stopping": {"patience": NonNegativeInt, "min_delta": NonNegativeFloat},
    "checkpoint": {"save_top_k": MinusOneOrMore, "every_n_epochs": NonNegativeInt,
                   "every_n_train_steps": NonNegativeInt},
    "last_checkpoint": {"save_top_k": MinusOneOrMore, "every_n_epochs": NonNegativeInt,
                        "every_n_train_steps": NonNegativeInt},
}


def describe_any(t: Any) -> str:
    """:func:`describe` for a range or a tuple of alternative ranges."""
    if isinstance(t, tuple):
        return " or ".join(describe(a) for a in t)
    return describe(t)


def out_of_range_any(value: Any, t: Any) -> bool:
    if isinstance(t, tuple):
        # in range when one alternative takes it: 0.5 (of the batches), 10 or 10.0 (batches)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return all(out_of_range(value, a) for a in t)
    return out_of_range(value, t)


for _t in (PositiveInt, NonNegativeInt, PositiveFloat, NonNegativeFloat, ClosedUnitInterval, OpenUnitInterval,
           Fraction, AtLeastTwo, Seed, MinusOneOrMore, DeviceCount, IemocapSession):
    _plain_values(_t)
