"""Where the zoo keeps what it caches: one folder, ``$ZOO_CACHE_DIR`` (default ``~/.cache/zoo``),
with one subfolder per kind (``audio``, ``embeddings``, ``tokenizers``, ``mlm``, ``checkpoints``,
the generated synthetic corpora).

Standard library only and importing nothing of the zoo, so every layer (data, nn, models,
inference) may use it: the default is written here and nowhere else.
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``$ZOO_CACHE_DIR/<parts...>`` (default ``~/.cache/zoo/<parts...>``). The variable is read at
    each call, so a run or a test that sets it later is obeyed; an empty value means unset."""
    root = os.environ.get("ZOO_CACHE_DIR") or Path.home() / ".cache" / "zoo"
    return Path(root).joinpath(*parts)
