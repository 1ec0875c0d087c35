"""jiant's sequence classifier as a torch module (jiant's classification head has no
transformers twin: it reads the encoder's pooler output, then dense -> tanh -> out_proj).
Imported only when a jiant classification checkpoint is loaded."""

from __future__ import annotations

from typing import Any

import torch

from harness_ext.backends._common import model_from_state_dict
from harness_ext.backends.base import CheckpointError

#: encoders whose jiant ``encode`` pools with the first token instead of the pooler
_FIRST_TOKEN_POOLED = {"deberta-v2", "electra", "bart", "mbart"}


class JiantSequenceClassifier(torch.nn.Module):
    """jiant's ClassificationModel: pooled encoder output -> dense -> tanh -> out_proj.

    Behaves like a transformers sequence classifier for the adapters: ``config`` with
    ``id2label``, ``model(**batch).logits``, ``get_input_embeddings()``.
    """

    def __init__(self, encoder: Any, num_labels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.config = encoder.config
        hidden = self.config.hidden_size
        self.head = torch.nn.Module()
        self.head.dense = torch.nn.Linear(hidden, hidden)
        self.head.out_proj = torch.nn.Linear(hidden, num_labels)

    @classmethod
    def from_weights(cls, cfg: Any, encoder_sd: dict[str, Any], head_sd: dict[str, Any], where: str) -> "JiantSequenceClassifier":
        encoder = model_from_state_dict(cfg, "encoder", {k[len("encoder."):]: v for k, v in encoder_sd.items()}, where)
        if cfg.model_type not in _FIRST_TOKEN_POOLED and getattr(encoder, "pooler", None) is None:
            raise CheckpointError(f"{where}: jiant pools {cfg.model_type} with its pooler, which this encoder lacks")
        pooler_keys = [k for k in encoder_sd if k.startswith("encoder.pooler.")]
        if cfg.model_type not in _FIRST_TOKEN_POOLED and not pooler_keys:
            raise CheckpointError(f"{where}: no encoder.pooler.* weights (jiant's classification head reads the pooler)")
        model = cls(encoder, cfg.num_labels)
        try:
            model.head.load_state_dict(head_sd, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{where}: jiant classification head does not fit (expected dense + out_proj): {exc}") from exc
        return model

    def get_input_embeddings(self) -> Any:
        return self.encoder.get_input_embeddings()

    @property
    def device(self) -> Any:
        return next(self.parameters()).device

    @property
    def dtype(self) -> Any:
        return next(self.parameters()).dtype

    def forward(self, input_ids: Any = None, attention_mask: Any = None, token_type_ids: Any = None, **kwargs: Any) -> Any:
        from transformers.modeling_outputs import SequenceClassifierOutput

        kwargs.pop("labels", None)
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        if self.config.model_type in _FIRST_TOKEN_POOLED:
            pooled = out.last_hidden_state[:, 0]
        else:
            pooled = out.pooler_output
        logits = self.head.out_proj(torch.tanh(self.head.dense(pooled)))
        return SequenceClassifierOutput(logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)
