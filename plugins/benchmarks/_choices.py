"""MMBench's choice extraction ladder (after MMBench / VLMEvalKit's can_infer and matching prompt).

(1) exactly one option letter as a standalone token, (2) else exactly one option text as a
substring, (3) else an LLM maps the answer to a letter (Z = none), (4) else unmatched.
"""

from __future__ import annotations

import string

PUNCTUATION = ".()[],:;!*#{}"

# The matching prompt of MMBench's evaluation (VLMEvalKit build_prompt), as a template.
MATCHING_PROMPT = (
    "You are an AI assistant who will help me to match an answer with several options of a "
    "single-choice question. You are provided with a question, several options, and an answer, "
    "and you need to find which option is most similar to the answer. If the meaning of all "
    "options are significantly different from the answer, output Z. Your should output a single "
    "uppercase character in A, B, C, D (if they are valid options), and Z. \n"
    "Example 1: \n"
    "Question: What is the main object in image?\nOptions: A. teddy bear B. rabbit C. cat D. dog\n"
    "Answer: a cute teddy bear\nYour output: A\n"
    "Example 2: \n"
    "Question: What is the main object in image?\nOptions: A. teddy bear B. rabbit C. cat D. dog\n"
    "Answer: Spider\nYour output: Z\n"
    "Example 3: \n"
    "Question: {question}?\nOptions: {options}\nAnswer: {answer}\nYour output: "
)


def infer_letter(answer: str, options: dict[str, str]) -> str | None:
    """Step 1: exactly one option letter appears as a token once punctuation is blanked."""
    text = answer
    for ch in PUNCTUATION:
        text = text.replace(ch, " ")
    tokens = {t.strip() for t in text.split()}
    found = [letter for letter in options if letter in tokens]
    return found[0] if len(found) == 1 else None


def infer_text(answer: str, options: dict[str, str]) -> str | None:
    """Step 2: exactly one option's text appears (case-insensitively) inside the answer."""
    lowered = answer.lower()
    found = [letter for letter, text in options.items() if str(text).lower() in lowered]
    return found[0] if len(found) == 1 else None


def extract(answer: str, options: dict[str, str]) -> str | None:
    """Steps 1 and 2 of the ladder; None means the LLM must be asked."""
    return infer_letter(answer, options) or infer_text(answer, options)


def matching_query(question: str, options: dict[str, str], answer: str) -> str:
    listed = " ".join(f"{letter}. {text}" for letter, text in options.items())
    return MATCHING_PROMPT.format(question=question, options=listed, answer=answer)


def parse_match(content: str | None, options: dict[str, str]) -> str | None:
    """The judge's letter ("Z" = no option matches); None when the reply names no valid letter."""
    if not content:
        return None
    valid = dict(options)
    valid["Z"] = ""
    return infer_letter(content, valid)


def letters(n: int) -> list[str]:
    return list(string.ascii_uppercase[:n])
