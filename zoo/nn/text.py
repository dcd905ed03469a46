"""Text encoder: a BERT-style transformer from ``transformers``, loaded by hub id or local
directory (KoBERT by default) or built from size options when no weights are available."""
from __future__ import annotations

import os
import uuid
from typing import Literal

import torch
from torch import nn

from ..errors import ZooUserError
from .pooling import MeanPooling


class TextEncoder(nn.Module):
    """Token ids -> token states (``frames``) or one utterance embedding (``forward``).

    ``pretrained``: hub id or directory read by ``AutoModel.from_pretrained``; None builds a
    ``BertModel`` from the size options (random init, trained from scratch), or the architecture
    described by ``config`` (a Hugging Face config dict with its ``model_type``). Padding is masked
    everywhere (attention mask; mean pooling over real tokens only).
    """

    def __init__(self, pretrained: str | None = "monologg/kobert", vocab_size: int = 8005,
                 hidden_size: int = 256, num_layers: int = 3, num_heads: int = 4,
                 intermediate_size: int = 1024, max_positions: int = 512, dropout: float = 0.1,
                 pooling: Literal["cls", "mean"] = "cls", config: dict | None = None):
        super().__init__()
        from transformers import AutoConfig, AutoModel, BertConfig, BertModel

        if config and not pretrained:  # the architecture a checkpoint recorded (no hub needed)
            self.bert = AutoModel.from_config(AutoConfig.for_model(**config))
        elif pretrained:
            from ..hub import HubModelMissing, from_pretrained

            try:
                self.bert = from_pretrained(AutoModel.from_pretrained, pretrained, "the text encoder")
            except HubModelMissing:
                raise
            except Exception as e:  # it is there but unreadable
                raise ZooUserError(f"cannot load the text encoder {pretrained!r}: {e}") from e
        else:
            cfg = BertConfig(vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers,
                             num_attention_heads=num_heads, intermediate_size=intermediate_size,
                             max_position_embeddings=max_positions, hidden_dropout_prob=dropout,
                             attention_probs_dropout_prob=dropout)
            self.bert = BertModel(cfg, add_pooling_layer=False)
        self.pooling = pooling
        self.mean = MeanPooling()
        self.out_dim = self.bert.config.hidden_size

    @property
    def vocab_size(self) -> int:
        return self.bert.config.vocab_size

    def frames(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token states (B, T, H); rows past ``attention_mask`` are padding."""
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.frames(input_ids, attention_mask)
        if self.pooling == "cls":
            return h[:, 0]
        return self.mean(h, attention_mask.sum(1))


MLM_VERSION = 1  # bump when the pretraining recipe changes (invalidates cached encoders)


def pretrain_mlm(encoder: TextEncoder, hf_tokenizer, texts: list[str], *, epochs: int = 3,
                 batch_size: int = 32, lr: float = 5e-4, mlm_probability: float = 0.15,
                 max_length: int = 64, seed: int = 0, device: str | torch.device = "cpu",
                 cache_dir=None) -> list[float]:
    """Masked-language-model pretraining of ``encoder`` in place on unlabelled ``texts``; returns
    the mean MLM loss of each epoch.

    Transformers' ``AutoModelForMaskedLM`` head (tied to the encoder's input embeddings) and
    ``DataCollatorForLanguageModeling`` (15% of tokens: 80% [MASK], 10% random, 10% kept), AdamW
    with linear warm-up (10%) and decay. The result is cached by the starting weights, the texts,
    the tokenizer's vocabulary and the options, so the same run again loads it without training.
    """
    import hashlib
    import json
    from pathlib import Path

    from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling, get_linear_schedule_with_warmup

    texts = [t.strip() for t in texts if t and t.strip()]
    if not texts:
        raise ZooUserError("masked-language-model pretraining needs text: the corpus has no transcripts")
    if hf_tokenizer.mask_token_id is None:
        raise ZooUserError("masked-language-model pretraining needs a tokenizer with a [MASK] token")
    h = hashlib.sha256()
    h.update(json.dumps([MLM_VERSION, epochs, batch_size, lr, mlm_probability, max_length, seed,
                         encoder.bert.config.to_json_string(use_diff=False), texts,
                         sorted(hf_tokenizer.get_vocab().items())], ensure_ascii=False).encode())
    for k, v in encoder.bert.state_dict().items():  # the starting point (seeded initialisation)
        h.update(k.encode() + v.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    if cache_dir is None:
        from ..paths import cache_dir as zoo_cache_dir

        cache_dir = zoo_cache_dir("mlm")
    path = Path(cache_dir) / f"encoder-{h.hexdigest()[:16]}.pt"
    if path.exists():
        cached = torch.load(path, map_location="cpu", weights_only=True)
        encoder.bert.load_state_dict(cached["state_dict"])
        return list(cached["losses"])

    mlm = AutoModelForMaskedLM.from_config(encoder.bert.config)
    setattr(mlm, mlm.base_model_prefix, encoder.bert)  # train the encoder itself, not a copy
    mlm.tie_weights()
    home = next(encoder.bert.parameters()).device
    mlm.to(device).train()
    collator = DataCollatorForLanguageModeling(hf_tokenizer, mlm_probability=mlm_probability)
    encoded = [hf_tokenizer(t, truncation=True, max_length=max_length)["input_ids"] for t in texts]
    steps = epochs * -(-len(encoded) // batch_size)
    opt = torch.optim.AdamW([p for p in mlm.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(opt, max(1, steps // 10), steps)
    losses = []
    with torch.random.fork_rng(devices=[]):  # seeded masks, and the caller's random stream untouched
        torch.manual_seed(seed)
        for _ in range(epochs):
            order = torch.randperm(len(encoded)).tolist()
            total, n = 0.0, 0
            for s in range(0, len(order), batch_size):
                batch = collator([{"input_ids": encoded[i]} for i in order[s:s + batch_size]])
                if not (batch["labels"] != -100).any():  # nothing masked (tiny batches): no loss
                    continue
                batch = {k: v.to(device) for k, v in batch.items()}
                loss = mlm(**batch).loss
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(mlm.parameters(), 1.0)
                opt.step()
                sched.step()
                total, n = total + loss.item() * len(batch["input_ids"]), n + len(batch["input_ids"])
            losses.append(total / max(n, 1))
    encoder.bert.to(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")  # DDP ranks write it at once
    torch.save({"state_dict": {k: v.cpu() for k, v in encoder.bert.state_dict().items()}, "losses": losses}, tmp)
    tmp.replace(path)
    return losses
