"""Loading a pretrained model by hub id or local directory, and one clear error when it is not
there. ``from_pretrained`` is called exactly as usual; what this adds is the order (a local
directory, then the Hugging Face cache, then the hub only when it can be reached) and the message
that says what was looked for and the two ways on."""
from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from .errors import ZooUserError


class HubModelMissing(ZooUserError):
    """A pretrained model named by hub id or path is not available here."""


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def hub_reachable(timeout: float = 3.0) -> bool:
    """False when the hub is switched off (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE) or its host does
    not resolve: then trying costs ~25 s of retries and a page of warnings for nothing."""
    if _truthy("HF_HUB_OFFLINE") or _truthy("TRANSFORMERS_OFFLINE"):
        return False
    try:
        from huggingface_hub import constants

        host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    except Exception:  # pragma: no cover - huggingface_hub comes with transformers
        host = "huggingface.co"
    old = socket.getdefaulttimeout()
    try:
        socket.setdefaulttimeout(timeout)
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False
    finally:
        socket.setdefaulttimeout(old)


def _cache_dir() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except Exception:  # pragma: no cover
        return "~/.cache/huggingface/hub"


@contextlib.contextmanager
def _quiet_hub():
    """The hub client's retry warnings and transformers' fallbacks would bury the one message."""
    names = ("huggingface_hub", "transformers", "urllib3")
    saved = [(lg, lg.level) for lg in map(logging.getLogger, names)]
    for lg, _ in saved:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in saved:
            lg.setLevel(level)


def missing_message(name: str, what: str, reason: str = "") -> str:
    local = Path(name).expanduser()
    return (f"{what} {name!r} is not available: there is no local directory {str(local)!r}, it is not in the "
            f"Hugging Face cache ({_cache_dir()}), and the hub {reason or 'cannot be reached'}. Either give a "
            f"local copy (pretrained: /path/to/model, a folder written by save_pretrained, or fill the cache "
            f"once where there is network: huggingface-cli download {name}), or go without pretrained weights: "
            f"set pretrained: null (trained from scratch), or stack the model's CPU-size overlay after its config "
            f"(--config configs/model/tiny/<the model's config name>.yaml).")


def from_pretrained(load: Callable, name: str, what: str, **kwargs):
    """``load(name, **kwargs)`` (a transformers ``from_pretrained``) for a local directory, a
    cached hub id, or a hub id fetched from the hub when it can be reached; otherwise
    :class:`HubModelMissing`. Errors of a model that *is* there (a malformed directory) come
    through as they are."""
    path = Path(name).expanduser()
    if path.is_dir():
        return load(str(path), **kwargs)
    if name.startswith(("/", "./", "../", "~")) or os.sep + os.sep in name:
        raise HubModelMissing(missing_message(name, what, "was not asked (this is a path)"))
    with _quiet_hub():
        try:
            return load(name, local_files_only=True, **kwargs)
        except Exception:  # not cached (transformers raises OSError, some tokenizers TypeError)
            pass
        if not hub_reachable():
            raise HubModelMissing(missing_message(name, what))
        try:
            return load(name, **kwargs)
        except Exception as e:
            raise HubModelMissing(missing_message(name, what, f"did not give it ({type(e).__name__}: {e})")) from e
