"""The ``Corpus`` base: what every corpus adapter is, and the registry they join by name.

A corpus is a small typed class (its options are ``__init__`` arguments with type hints and
defaults, so LightningCLI documents and checks them) whose :meth:`Corpus.load` turns a folder
into ``list[Utterance]``, reporting bad rows and files to the shared :class:`ProblemLog`.
Subclasses register themselves with a name::

    class RAVDESS(Corpus, name="ravdess"):
        def __init__(self, root: str, include_song: bool = False): ...
        def load(self, problems): ...

Every module in ``zoo/data/corpora/`` is imported by the package, so one new file is one new
corpus: the ``python -m zoo manifest`` choices, the table in ``docs/data.md`` and the
parametrized corpus test are derived from :func:`registry`.

Only the standard library is imported here (and by every adapter).
"""
from __future__ import annotations

import codecs
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from zoo.data.utterance import DIMENSIONS, Utterance
from zoo.errors import CorpusError, ProblemLog

_REGISTRY: dict[str, type["Corpus"]] = {}


@dataclass(frozen=True)
class CorpusInfo:
    """What the docs table says about a corpus (one row of the generated table in docs/data.md)."""

    title: str
    language: str
    size: str  # e.g. "1,440 clips, 24 actors"
    classes: str  # the default class list, in words
    dimensions: str = "-"  # e.g. "arousal, valence, dominance (1-5)"
    speakers: str = "-"
    protocol: str = "-"  # the default split
    source: str = "-"  # where to obtain it
    config: str = "-"  # its data config


class Corpus:
    """A corpus adapter: typed options in ``__init__``, one :meth:`load`.

    Class attributes a subclass sets:

    * ``name`` (by ``class X(Corpus, name="x")``): the registered name;
    * ``default_class_names``: the class list used when ``class_names`` is not configured
      (None: the sorted labels found);
    * ``dims_scale``: the raw (low, high) range of its dimensional ratings, or None;
    * ``info``: a :class:`CorpusInfo` for the docs table;
    * ``exportable``: whether ``python -m zoo manifest NAME --root DIR`` can write it.
    """

    name: ClassVar[str] = ""
    default_class_names: ClassVar[tuple[str, ...] | None] = None
    dims_scale: ClassVar[tuple[float, float] | None] = None
    info: ClassVar[CorpusInfo | None] = None
    exportable: ClassVar[bool] = True

    def __init_subclass__(cls, name: str | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        if name is None:
            cls.name = ""  # an unregistered helper base (its subclasses may register)
            return
        if name in _REGISTRY:
            raise ValueError(f"corpus name {name!r} is already registered by "
                             f"{_REGISTRY[name].__module__}.{_REGISTRY[name].__qualname__}")
        cls.name = name
        _REGISTRY[name] = cls

    # -- what a subclass implements -----------------------------------------------------------
    def load(self, problems: ProblemLog) -> list[Utterance]:
        """Read the corpus into Utterance records; bad rows/files go to ``problems``."""
        raise NotImplementedError

    def new_skip_log(self) -> "Skipped":
        """A fresh record of files passed over on purpose (the DataModule reports it)."""
        self.skipped = Skipped()
        return self.skipped

    def prepare(self) -> None:
        """Make the files exist (the synthetic corpus generates itself here); default: nothing."""

    def stands_in_for(self) -> tuple[str, str, str] | None:
        """For data that stands in for a real corpus (the synthetic demo corpus in AI Hub's layout,
        read by the AI Hub adapter): ``(option, example value, the real corpus's title)``, so that
        the end of a run shows how the same config trains on the real data
        (``--data.corpus.<option> <value>``). Asked after :meth:`load`. None: nothing to show."""
        return None

    @property
    def title(self) -> str:
        """How logs and errors name this corpus."""
        return self.info.title if self.info else (self.name or type(self).__name__)

    def options(self) -> dict:
        """The options this corpus was built with (plain values, for logs and checkpoints)."""
        import inspect

        out = {}
        for p in list(inspect.signature(type(self).__init__).parameters.values())[1:]:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            value = getattr(self, p.name, p.default)
            out[p.name] = list(value) if isinstance(value, tuple) else value
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.options().items())})"


def registry() -> dict[str, type[Corpus]]:
    """Registered corpora by name (every adapter in zoo/data/corpora/ imported)."""
    import zoo.data.corpora  # noqa: F401  (imports every adapter module)

    return dict(sorted(_REGISTRY.items()))


def get_corpus(name: str) -> type[Corpus]:
    reg = registry()
    if name not in reg:
        raise CorpusError(f"unknown corpus {name!r}; registered: {', '.join(reg)}")
    return reg[name]


# -- helpers the adapters share ---------------------------------------------------------------

def decode_text(data: bytes, source: object) -> tuple[str, str]:
    """Decode a text file's bytes: UTF-8 with BOM, UTF-16 with BOM, UTF-8, else cp949.

    Returns ``(text, encoding)``; raises :class:`CorpusError` naming ``source`` when none fits.
    """
    try:
        if data.startswith(codecs.BOM_UTF8):
            return data[len(codecs.BOM_UTF8):].decode("utf-8"), "utf-8-sig"
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return data.decode("utf-16"), "utf-16"
    except UnicodeDecodeError as e:
        raise CorpusError(f"{source}: starts with a Unicode BOM but is not valid Unicode "
                          f"(byte {e.start})") from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    # not UTF-8 as a whole: cp949 (AI Hub's CSVs), line by line, because a file edited in another
    # program may hold a few rows saved as UTF-8 (which cp949 would turn into mojibake, silently).
    # A Hangul line in cp949 is practically never valid UTF-8, so UTF-8 is tried first per line.
    lines, utf8_rows, offset = [], [], 0
    for n, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8")
            if any(b >= 0x80 for b in raw):
                utf8_rows.append(n)
        except UnicodeDecodeError:
            try:
                line = raw.decode("cp949")
            except UnicodeDecodeError as e:
                raise CorpusError(f"{source}: line {n} is neither UTF-8 nor cp949 (bad byte at offset "
                                  f"{offset + e.start}); save the file as UTF-8 or cp949") from None
        lines.append(line)
        offset += len(raw) + 1
    text = "\n".join(lines)
    if utf8_rows:
        shown = ", ".join(map(str, utf8_rows[:10])) + (" ..." if len(utf8_rows) > 10 else "")
        return text, f"cp949+utf-8 (line(s) {shown} are UTF-8, the rest cp949; each read as written)"
    return text, "cp949"


def normalize_dims(raw: dict[str, float | None], scale: tuple[float, float]) -> dict[str, float]:
    """Ratings on the corpus's ``scale`` (low, high) -> the zoo's one range, [0, 1].

    ``0`` is the low end of the corpus's scale and ``1`` the high end (IEMOCAP 1-5: 3 -> 0.5;
    MSP-Podcast 1-7: 4 -> 0.5). Missing ratings are left out; a rating outside the scale raises
    ``ValueError`` (the adapter reports it as a problem of its row).
    """
    lo, hi = scale
    out = {}
    for k, v in raw.items():
        if k not in DIMENSIONS:
            raise ValueError(f"unknown dimension {k!r} (known: {', '.join(DIMENSIONS)})")
        if v is None:
            continue
        v = float(v)
        if not lo - 1e-9 <= v <= hi + 1e-9:
            raise ValueError(f"{k} {v:g} is outside the corpus's scale {lo:g}-{hi:g}")
        out[k] = (v - lo) / (hi - lo)
    return out


def find_root(root: str | Path, what: str, looks_like, hint: str) -> Path:
    """The corpus folder: ``root`` itself, or the one folder one level above/below it that
    ``looks_like(path)``; else a :class:`CorpusError` saying which folder to give.

    ``what`` names the corpus, ``hint`` says what the right folder holds (e.g. "the folder holding
    Actor_01/ ... Actor_24/").
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise CorpusError(f"{what} root {str(root)!r} does not exist; give {hint}")
    if not root.is_dir():
        raise CorpusError(f"{what} root {str(root)!r} is not a folder; give {hint}")
    if looks_like(root):
        return root
    below = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                   and looks_like(p))
    if len(below) == 1:
        return below[0]
    # the root given is a folder inside the corpus (Actor_01/, AudioWAV/): not an empty one
    if root.parent != root and any(root.iterdir()) and looks_like(root.parent):
        return root.parent
    raise CorpusError(f"{what} root {str(root)!r} does not look like {what}: expected {hint}"
                      + (f"; several candidates below it: {', '.join(p.name for p in below)}"
                         if below else ""))


def walk(root: str | Path):
    """``os.walk(root, followlinks=True)`` that enters each real folder once.

    Symlinked folders are followed (corpora are often assembled from links), but a link back up
    the tree (a loop) or a second link to the same folder adds nothing, so a loop can neither
    hang the scan nor list a file twice.
    """
    seen: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # reached again through a link: already listed
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if os.path.realpath(os.path.join(folder, d)) not in seen]
        yield folder, dirs, files


def walk_files(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files below ``root`` with one of ``suffixes`` (lower case), sorted; macOS junk skipped;
    symlinked folders followed, each real folder once (see :func:`walk`)."""
    out = []
    for folder, dirs, files in walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__MACOSX" and not d.startswith("."))
        for f in files:
            if f.startswith("._") or f.startswith("."):
                continue
            if f.lower().endswith(suffixes):
                out.append(Path(folder, f))
    return sorted(out)


def wav_files(folder: Path, skipped: "Skipped") -> list[Path]:
    """The files directly in ``folder`` that are ``.wav``, sorted; hidden files and folders are
    ignored, any other file is counted in ``skipped`` as "not a .wav file"."""
    out = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        if p.suffix.lower() != ".wav":
            skipped.add("not a .wav file", p)
            continue
        out.append(p)
    return out


@dataclass
class Skipped:
    """Files an adapter passed over on purpose (not problems), counted for the setup log; a reason
    containing "kept" notes something about files that were kept (e.g. no transcript)."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, example: object) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < 3:
            ex.append(str(example))

    def dropped(self) -> dict[str, int]:
        """The counts of files left out (a reason that says "kept" is a note on kept files)."""
        return {r: n for r, n in self.counts.items() if "kept" not in r}

    def __str__(self) -> str:
        return "; ".join(f"{n} {r} (e.g. {', '.join(self.examples[r])})" for r, n in self.counts.items())
