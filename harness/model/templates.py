"""LLaVA's conversation templates, token by token: `plain` (stage 1) and `vicuna_v1` (stage 2),
with `llava_v1` (vicuna_v1's format under LLaVA's own system prompt) for evaluation.

The strings are LLaVA's (llava/conversation.py, `conv_llava_plain`, `conv_vicuna_v1` and
`conv_llava_v1`), and the
masking is LLaVA's: only assistant replies and their `</s>` are supervised. Labels come from one
tokenization of the whole rendered text (character offsets decide which tokens are supervised),
so the mask cannot drift from the tokens the model sees. Where the tokenizer does not split the
text on the template's boundaries, the sample raises `TokenizationMismatch` naming it, instead of
being silently masked out as upstream does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness.errors import UserError

IGNORE_INDEX = -100
IMAGE_TOKEN = "<image>"
TEMPLATES = ("plain", "vicuna_v1", "llava_v1")
Template = Literal["plain", "vicuna_v1", "llava_v1"]

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
LLAVA_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
# the two-separator formats: the same turns, each under its own system prompt
SYSTEMS = {"vicuna_v1": VICUNA_SYSTEM, "llava_v1": LLAVA_SYSTEM}
VICUNA_ROLES = {"human": "USER", "gpt": "ASSISTANT"}
VICUNA_SEP, VICUNA_SEP2 = " ", "</s>"
PLAIN_SEP = "\n"


class TokenizationMismatch(UserError):
    """The tokenizer did not split a sample on its template's boundaries: its labels are wrong."""

    def __init__(self, sample_id: str, reason: str, n_tokens: int, n_supervised: int, ids: list):
        self.sample_id, self.reason = sample_id, reason
        self.n_tokens, self.n_supervised, self.first_ids = n_tokens, n_supervised, ids[:16]
        super().__init__(
            f"tokenization mismatch in sample {sample_id!r}: {reason} "
            f"({n_tokens} tokens, {n_supervised} supervised; first ids {self.first_ids})"
        )


@dataclass(frozen=True)
class Encoded:
    """One sample as the model trains on it; `labels` is IGNORE_INDEX where not supervised."""

    input_ids: list[int]
    labels: list[int]
    has_image: bool
    truncated: bool = False

    @property
    def n_supervised(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


def _check_turns(messages: Sequence[dict[str, Any]], sample_id: str) -> list[dict[str, Any]]:
    """LLaVA drops a leading gpt turn, then requires strict human/gpt alternation."""
    turns = list(messages)
    if turns and turns[0].get("from") != "human":
        turns = turns[1:]
    for i, turn in enumerate(turns):
        expected = "human" if i % 2 == 0 else "gpt"
        if turn.get("from") != expected or not isinstance(turn.get("value"), str):
            raise UserError(
                f"sample {sample_id!r}: turn {i} should be from {expected!r} with a string value, "
                f"got {turn.get('from')!r}"
            )
    return turns


def _image_first(value: str) -> str:
    """LLaVA's preprocess_multimodal: the image token moves to the front, then a newline."""
    if IMAGE_TOKEN not in value:
        return value
    return (IMAGE_TOKEN + "\n" + value.replace(IMAGE_TOKEN, "").strip()).strip()


def segments(
    messages: Sequence[dict[str, Any]],
    template: Template,
    *,
    generation: bool = False,
    sample_id: str = "?",
) -> list[tuple[str, bool]]:
    """The rendered text as (piece, supervised) pieces; their concatenation is `render(...)`.

    With `generation`, the text ends where the model starts answering (LLaVA's eval prompt).
    """
    if template == "plain":
        if generation:
            return [(IMAGE_TOKEN, False)]
        if len(messages) != 2 or IMAGE_TOKEN not in str(messages[0].get("value", "")):
            raise UserError(
                f"sample {sample_id!r}: the plain template needs one human turn with "
                f"{IMAGE_TOKEN} and one reply, got {len(messages)} turns"
            )
        return [(IMAGE_TOKEN, False), (str(messages[1]["value"]) + PLAIN_SEP, True)]
    if template not in SYSTEMS:
        raise UserError(f"unknown conversation template {template!r}; known: {TEMPLATES}")
    turns = _check_turns(messages, sample_id)
    pieces: list[tuple[str, bool]] = []
    prefix = SYSTEMS[template] + VICUNA_SEP
    for i, turn in enumerate(turns):
        role = VICUNA_ROLES[turn["from"]]
        value = _image_first(turn["value"])
        if turn["from"] == "human":
            prefix += f"{role}: {value}{VICUNA_SEP}"
        elif value:
            # The space after "ASSISTANT:" goes with the reply: tokenizers fold it into the
            # reply's first token, which LLaVA supervises.
            pieces += [(prefix + f"{role}:", False), (f" {value}{VICUNA_SEP2}", True)]
            prefix = ""
        else:
            prefix += f"{role}:"
        if i == len(turns) - 1 and generation and turn["from"] == "human":
            prefix += f"{VICUNA_ROLES['gpt']}:"
    if prefix:
        pieces.append((prefix, False))
    return pieces


def render(
    messages: Sequence[dict[str, Any]], template: Template, *, generation: bool = False
) -> str:
    """The exact string LLaVA builds for `messages` (a list of {"from", "value"} turns)."""
    return "".join(piece for piece, _ in segments(messages, template, generation=generation))


def _tokenize(tokenizer: Any, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    out = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    return list(out["input_ids"]), [tuple(span) for span in out["offset_mapping"]]


def image_token_id(tokenizer: Any) -> int:
    token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise UserError(f"the tokenizer has no {IMAGE_TOKEN} token (add it as a special token)")
    return int(token_id)


def encode(
    messages: Sequence[dict[str, Any]],
    tokenizer: Any,
    template: Template,
    image_tokens: int,
    max_length: int,
    *,
    sample_id: str = "?",
) -> Encoded:
    """Token ids and LLaVA's labels for one conversation, `<image>` expanded to patch tokens."""
    pieces = segments(messages, template, sample_id=sample_id)
    text = "".join(piece for piece, _ in pieces)
    spans, start = [], 0
    for piece, supervised in pieces:
        if supervised:
            spans.append((start, start + len(piece)))
        start += len(piece)
    ids, offsets = _tokenize(tokenizer, text)
    labels = [IGNORE_INDEX] * len(ids)
    for k, (lo, hi) in enumerate(offsets):
        if hi <= lo:
            continue  # special tokens added by the tokenizer (BOS)
        inside = [max(lo, s) < min(hi, e) for s, e in spans]
        if any(inside) and not any(s <= lo and hi <= e for s, e in spans):
            raise TokenizationMismatch(
                sample_id,
                f"token {k} {text[lo:hi]!r} straddles a reply boundary",
                len(ids),
                sum(1 for x in labels if x != IGNORE_INDEX),
                ids,
            )
        if any(inside):
            labels[k] = ids[k]
    _check_reply_ends(ids, labels, spans, template, tokenizer, sample_id)
    return _expand_images(ids, labels, tokenizer, text, image_tokens, max_length, sample_id)


def _check_reply_ends(ids, labels, spans, template, tokenizer, sample_id) -> None:
    """Each vicuna_v1 reply must end in the EOS id, or the model never learns to stop."""
    if template not in SYSTEMS:
        return
    ends = sum(
        1
        for k in range(len(ids))
        if labels[k] != IGNORE_INDEX
        and (k + 1 == len(ids) or labels[k + 1] == IGNORE_INDEX)
        and ids[k] == tokenizer.eos_token_id
    )
    if ends != len(spans):
        raise TokenizationMismatch(
            sample_id,
            f"{len(spans)} replies but {ends} end in the EOS id "
            f"{tokenizer.eos_token_id} ({VICUNA_SEP2!r} is not the tokenizer's EOS token?)",
            len(ids),
            sum(1 for x in labels if x != IGNORE_INDEX),
            ids,
        )


def _expand_images(ids, labels, tokenizer, text, image_tokens, max_length, sample_id) -> Encoded:
    n_images = text.count(IMAGE_TOKEN)
    out_ids: list[int] = []
    out_labels: list[int] = []
    if n_images:
        image_id = image_token_id(tokenizer)
        if ids.count(image_id) != n_images:
            raise TokenizationMismatch(
                sample_id,
                f"{n_images} {IMAGE_TOKEN} in the text but {ids.count(image_id)} image token ids",
                len(ids),
                0,
                ids,
            )
        for token, label in zip(ids, labels, strict=True):
            count = image_tokens if token == image_id else 1
            out_ids += [token] * count
            out_labels += [label] * count
        last_image = len(out_ids) - out_ids[::-1].index(image_id)
        if last_image > max_length:
            raise UserError(
                f"sample {sample_id!r}: max_length {max_length} cuts into its {image_tokens} "
                f"image tokens (they end at {last_image})"
            )
    else:
        out_ids, out_labels = ids, labels
    truncated = len(out_ids) > max_length
    return Encoded(out_ids[:max_length], out_labels[:max_length], bool(n_images), truncated)


def prompt_ids(
    messages: Sequence[dict[str, Any]], tokenizer: Any, template: Template, image_tokens: int
) -> list[int]:
    """Token ids of the generation prompt (ends with "ASSISTANT:"), images expanded."""
    text = render(messages, template, generation=True)
    ids, _ = _tokenize(tokenizer, text)
    if IMAGE_TOKEN not in text:
        return ids
    image_id = image_token_id(tokenizer)
    return [t for token in ids for t in ([token] * (image_tokens if token == image_id else 1))]
