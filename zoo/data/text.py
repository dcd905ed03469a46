"""Text side of the data pipeline: tokenizers by name or path, and a sentencepiece tokenizer
trained on the training transcripts when no pretrained one is given (offline, from scratch).

KoBERT (``monologg/kobert``) ships a sentencepiece model plus a ``vocab.txt`` read by
kobert-transformers' ``KoBertTokenizer``; other hub tokenizers load with ``AutoTokenizer``. The
from-scratch tokenizer uses the same KoBERT file layout, so one class serves both.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
import uuid
from pathlib import Path
from typing import Sequence

from kobert_transformers.tokenization_kobert import VOCAB_FILES_NAMES, KoBertTokenizer

from ..errors import ZooUserError

log = logging.getLogger("zoo")

#: special tokens of the from-scratch vocabulary, in KoBERT's order ([PAD] first: id 0)
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
KOBERT_SPM = VOCAB_FILES_NAMES["vocab_file"]  # tokenizer_78b3253a26.model
KOBERT_VOCAB = VOCAB_FILES_NAMES["vocab_txt"]  # vocab.txt
SPM_VERSION = 1  # bump when the training recipe changes (invalidates cached tokenizers)


class ZooKoBertTokenizer(KoBertTokenizer):
    """KoBertTokenizer whose ``save_pretrained`` works on transformers >= 4.x (the original
    ``save_vocabulary`` lacks the ``filename_prefix`` argument those versions pass)."""

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, str]:
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        out_model = Path(save_directory) / (prefix + KOBERT_SPM)
        out_txt = Path(save_directory) / (prefix + KOBERT_VOCAB)
        if Path(self.vocab_file).resolve() != out_model.resolve():
            out_model.write_bytes(Path(self.vocab_file).read_bytes())
        with open(out_txt, "w", encoding="utf-8") as f:
            for token, _ in sorted(self.token2idx.items(), key=lambda kv: kv[1]):
                f.write(token + "\n")
        return str(out_model), str(out_txt)


def _is_kobert(name: str) -> bool:
    p = Path(name)
    if p.is_dir():
        return (p / KOBERT_SPM).exists() and (p / KOBERT_VOCAB).exists()
    return name in KoBertTokenizer.pretrained_vocab_files_map["vocab_file"] or "kobert" in name.lower()


class TextTokenizer:
    """``encode(text) -> ids`` ([CLS] ... [SEP], truncated to ``max_length``) around a Hugging
    Face tokenizer; picklable, so it runs in DataLoader workers."""

    def __init__(self, hf_tokenizer, max_length: int = 64):
        self.hf = hf_tokenizer
        self.max_length = max_length

    def encode(self, text: str) -> list[int]:
        return self.hf(text or "", truncation=True, max_length=self.max_length)["input_ids"]

    @property
    def pad_id(self) -> int:
        return int(self.hf.pad_token_id if self.hf.pad_token_id is not None else 0)

    @property
    def vocab_size(self) -> int:
        return len(self.hf)

    def save(self, directory: str | Path) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.hf.save_pretrained(str(directory))

    def state(self) -> dict:
        """The tokenizer's files as bytes (stored inside zoo checkpoints: self-contained)."""
        with tempfile.TemporaryDirectory() as d:
            self.save(d)
            files = {p.name: p.read_bytes() for p in Path(d).iterdir() if p.is_file()}
        return {"files": files, "max_length": self.max_length}

    @classmethod
    def from_state(cls, state: dict, cache_dir: str | Path | None = None) -> "TextTokenizer":
        h = hashlib.sha256()
        for name in sorted(state["files"]):
            h.update(name.encode() + b"\0" + state["files"][name])
        d = Path(cache_dir or _default_dir()) / ("ckpt-" + h.hexdigest()[:16])
        if not d.exists():
            tmp = Path(tempfile.mkdtemp(dir=d.parent if d.parent.exists() else None))
            for name, data in state["files"].items():
                (tmp / name).write_bytes(data)
            d.parent.mkdir(parents=True, exist_ok=True)
            try:
                tmp.rename(d)
            except OSError:  # another process won the race: its copy is identical
                pass
        return load_tokenizer(str(d), max_length=state.get("max_length", 64))


def _default_dir() -> Path:
    from ..paths import cache_dir

    return cache_dir("tokenizers")


def load_tokenizer(name_or_path: str, max_length: int = 64) -> TextTokenizer:
    """A tokenizer by hub id or local directory (KoBERT's layout or anything AutoTokenizer reads)."""
    from ..hub import HubModelMissing, from_pretrained

    try:
        if _is_kobert(name_or_path):
            hf = from_pretrained(ZooKoBertTokenizer.from_pretrained, name_or_path, "the tokenizer")
        else:
            from transformers import AutoTokenizer

            hf = from_pretrained(AutoTokenizer.from_pretrained, name_or_path, "the tokenizer")
    except HubModelMissing:
        raise
    except Exception as e:
        raise ZooUserError(
            f"cannot load the tokenizer {name_or_path!r}: {e}\n"
            "Give a local directory (a hub id needs the network), or set the model's pretrained "
            "and tokenizer to null to train a tokenizer from the training transcripts.") from e
    return TextTokenizer(hf, max_length)


def _drop_rare_characters(texts: list[str], vocab_size: int) -> list[str]:
    """sentencepiece needs a piece for every character it keeps (and keeps at least 98% of the
    character occurrences); Korean has thousands of syllables, so with a small vocabulary the
    rarest characters are removed from the training text (they encode as [UNK])."""
    from collections import Counter

    counts = Counter(c for t in texts for c in t if not c.isspace())
    room = max(1, vocab_size - 3 - 8)  # minus <unk> <s> </s>, and a margin for "▁" and rounding
    if len(counts) <= room:
        return texts
    keep = {c for c, _ in counts.most_common(room)}
    return [t for t in ("".join(c for c in t if c in keep or c.isspace()) for t in texts) if t.strip()]


def train_tokenizer(texts: Sequence[str], vocab_size: int = 8000, max_length: int = 64,
                    cache_dir: str | Path | None = None) -> TextTokenizer:
    """Train a unigram sentencepiece vocabulary on ``texts`` (the training transcripts) and wrap
    it in the KoBERT layout. Cached by a hash of the texts and options, so every run on the same
    split gets the same tokenizer without retraining."""
    import sentencepiece as spm

    texts = [t.strip() for t in texts if t and t.strip()]
    if not texts:
        raise ZooUserError("cannot train a tokenizer: the training split has no transcripts")
    key = hashlib.sha256(json.dumps([SPM_VERSION, vocab_size, texts], ensure_ascii=False).encode()).hexdigest()
    out = Path(cache_dir or _default_dir()) / f"spm-{vocab_size}-{key[:16]}"
    if not (out / KOBERT_SPM).exists() or not (out / KOBERT_VOCAB).exists():
        out.mkdir(parents=True, exist_ok=True)
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(_drop_rare_characters(texts, vocab_size)), model_writer=model,
            vocab_size=vocab_size, model_type="unigram", character_coverage=0.9995,
            hard_vocab_limit=False,  # small corpora: fewer pieces than asked for, not an error
            num_threads=1,  # deterministic
            minloglevel=2)
        sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
        pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())
                  if not (sp.is_control(i) or sp.is_unknown(i))]
        # several processes (DDP ranks, parallel runs) may train the same vocabulary at once: each
        # writes its own temporary files and renames them into place (the contents are equal:
        # the training is deterministic), so none reads a half-written file or loses its rename
        tag = f".{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        tmp_vocab, tmp_model = out / (KOBERT_VOCAB + tag), out / (KOBERT_SPM + tag)
        tmp_vocab.write_text("\n".join(list(SPECIALS) + pieces) + "\n", encoding="utf-8")
        tmp_model.write_bytes(model.getvalue())
        os.replace(tmp_vocab, out / KOBERT_VOCAB)
        os.replace(tmp_model, out / KOBERT_SPM)  # last: its presence means both are whole
        log.info("trained a %d-piece sentencepiece tokenizer on %d training transcripts (%s)",
                 len(pieces), len(texts), out)
    tok = TextTokenizer(ZooKoBertTokenizer(vocab_file=str(out / KOBERT_SPM), vocab_txt=str(out / KOBERT_VOCAB)),
                        max_length)
    return tok
