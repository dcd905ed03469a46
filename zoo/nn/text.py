"""Text encoder: a BERT-style transformer from ``transformers``, loaded by hub id or local
directory (KoBERT by default) or built from size options when no weights are available."""
from __future__ import annotations

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
