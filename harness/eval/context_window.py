"""A model's context window: generation refuses prompts longer than it, and log-likelihood
scoring keeps a long context's last tokens to fit it, as lm-evaluation-harness does."""

from __future__ import annotations

from typing import Any


def context_tokens(model: Any) -> int | None:
    """The model's context window in tokens (its LLM's position limit), when its config says."""
    config = getattr(model, "config", None)
    text = getattr(config, "text_config", None) or config
    limit = getattr(text, "max_position_embeddings", None)
    return int(limit) if limit else None
