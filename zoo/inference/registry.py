"""The checkpoint registry: ``checkpoints/registry.yaml``, one entry per pretrained checkpoint.

An entry names a checkpoint and carries what a user needs to trust and use it: the model class
and its config, class names, the corpus and split it was trained on, its test WA / UA / macro-F1,
its size and sha256, and where the file is (a path relative to the registry, or a URL that is
downloaded once into ``$ZOO_CACHE_DIR/checkpoints``). Every file is checked against its sha256
before it is loaded, so a corrupted download or an edited file is refused.
"""
from __future__ import annotations

import difflib
import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ZooUserError

log = logging.getLogger("zoo")

#: the registry shipped with the repository (``checkpoints/`` beside ``zoo/``)
DEFAULT_REGISTRY = Path(__file__).resolve().parents[2] / "checkpoints" / "registry.yaml"

REQUIRED = ("name", "model", "class_names", "sha256", "size")  # class_names or dims


def registry_path(path: str | os.PathLike | None = None) -> Path:
    """The registry file in use: ``path``, else ``$ZOO_REGISTRY``, else the shipped one."""
    return Path(path or os.environ.get("ZOO_REGISTRY") or DEFAULT_REGISTRY)


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Entry:
    """One pretrained checkpoint of the registry."""

    name: str
    model: str
    class_names: list[str]
    sha256: str
    size: int
    file: str | None = None  # relative to the registry file
    url: str | None = None
    inputs: list[str] = field(default_factory=lambda: ["audio"])
    sample_rate: int = 16000
    dims: list[str] = field(default_factory=list)  # the dimensions it predicts (arousal, ...), if any
    config: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    corpus: str = ""
    split: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    license: str = ""
    intended_use: str = ""
    card: str | None = None
    command: str = ""
    params: int | None = None
    base: Path = Path(".")  # the registry's folder

    @property
    def local_path(self) -> Path | None:
        return (self.base / self.file) if self.file else None

    @property
    def card_path(self) -> Path | None:
        return (self.base / self.card) if self.card else None

    def fetch(self) -> Path:
        """The verified local file: the shipped one, or a download cached by its sha256."""
        if self.local_path is not None and self.local_path.is_file():
            verify(self.local_path, self.sha256, self.name)
            return self.local_path
        if not self.url:
            raise ZooUserError(f"checkpoint {self.name!r}: file {self.local_path} is missing and the "
                               "entry has no url to download it from")
        from ..paths import cache_dir

        dst = cache_dir("checkpoints", f"{self.sha256}.ckpt")
        if dst.is_file():
            verify(dst, self.sha256, self.name)
            return dst
        download(self.url, dst, self.sha256, self.name)
        return dst


def verify(path: Path, sha256: str, name: str) -> None:
    got = sha256_of(path)
    if got != sha256:
        raise ZooUserError(
            f"checkpoint {name!r}: {path} does not match the registry's sha256 (expected "
            f"{sha256[:16]}..., got {got[:16]}...). The file was modified or corrupted; it is not "
            "loaded. Restore it (git checkout checkpoints/) or download it again.")


def download(url: str, dst: Path, sha256: str, name: str) -> None:
    """Download to a temp file, verify, then move into place (a bad download never lands)."""
    import urllib.request

    dst.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s from %s", name, url)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=60) as r:
            shutil.copyfileobj(r, f)
        verify(Path(tmp), sha256, name)
        os.replace(tmp, dst)
    except ZooUserError:
        raise
    except Exception as e:
        raise ZooUserError(f"checkpoint {name!r}: cannot download {url}: {e}") from e
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class Registry:
    """The entries of one registry file, by name."""

    def __init__(self, entries: list[Entry], path: Path | None = None):
        self.path = path
        self.entries = {}
        for e in entries:
            if e.name in self.entries:  # one name, one checkpoint
                raise ZooUserError(f"{path}: checkpoint name {e.name!r} appears twice")
            self.entries[e.name] = e

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "Registry":
        import yaml

        p = registry_path(path)
        if not p.is_file():
            if path is None and p == DEFAULT_REGISTRY:
                return cls([], p)  # an installed package without the repository's checkpoints/
            raise ZooUserError(f"checkpoint registry not found: {p}")
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        rows = raw.get("checkpoints") or []
        entries = []
        known = set(Entry.__dataclass_fields__) - {"base"}
        for i, row in enumerate(rows):
            where = f"{p}: entry {i + 1}" + (f" ({row.get('name')})" if isinstance(row, dict) else "")
            if not isinstance(row, dict):
                raise ZooUserError(f"{where}: expected a mapping")
            # a dimension-only model lists dims instead of class_names
            missing = [k for k in REQUIRED if not row.get(k) and not (k == "class_names" and row.get("dims"))]
            if missing:
                raise ZooUserError(f"{where}: missing {', '.join(missing)}")
            row.setdefault("class_names", [])
            unknown = sorted(set(row) - known)
            if unknown:
                raise ZooUserError(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
            if not (row.get("file") or row.get("url")):
                raise ZooUserError(f"{where}: needs a file or a url")
            entries.append(Entry(**row, base=p.parent))
        return cls(entries, p)

    def names(self) -> list[str]:
        return list(self.entries)

    def get(self, name: str) -> Entry:
        if name in self.entries:
            return self.entries[name]
        close = difflib.get_close_matches(name, self.names(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ZooUserError(f"no checkpoint named {name!r} in {self.path} and no such file.{hint} "
                           f"Known: {', '.join(self.names()) or '(none)'}")

    def by_sha256(self, digest: str) -> Entry | None:
        return next((e for e in self.entries.values() if e.sha256 == digest), None)


def list_checkpoints(registry: str | os.PathLike | None = None) -> list[str]:
    """Names of the registry's checkpoints (``zoo.load`` takes any of them)."""
    return Registry.load(registry).names()


def resolve(name_or_path: str | os.PathLike, registry: str | os.PathLike | None = None) -> tuple[Path, Entry | None]:
    """A verified local checkpoint file for a registry name or a path, and its entry if known.

    A path that is not in the registry loads with a warning: nothing vouches for its contents
    (it is still unpickled with ``weights_only``, see ``zoo.models.loading.load_module``).
    """
    reg = Registry.load(registry)
    s = str(name_or_path)
    if s in reg.entries:
        e = reg.entries[s]
        return e.fetch(), e
    p = Path(s).expanduser()
    if p.is_file():
        e = reg.by_sha256(sha256_of(p))
        if e is None:
            log.warning("%s is not a registry checkpoint: its contents are not verified", p)
        return p, e
    if p.suffix == ".ckpt" or os.sep in s:
        raise ZooUserError(f"checkpoint not found: {p}")
    reg.get(s)  # raises with suggestions
    raise AssertionError("unreachable")
