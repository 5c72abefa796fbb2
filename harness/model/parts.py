"""Where an assembly's pieces live, apart from how they are found (foundation) or joined
(assemble), so that both can name them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Parts:
    """Where an assembly's pieces live: a causal LM, a CLIP vision model, a tokenizer."""

    llm: str
    tower: str
    tokenizer: str
