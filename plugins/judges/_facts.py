"""Key facts of a text for offline judging: normalised content words and numbers.

"Three red circles." and "there are 3 red circle" share the facts {3, red, circle}. Stop words
go, number words become digits, plural -s and -es are stripped, so overlap measures content.
"""

from __future__ import annotations

import re

STOPWORDS = frozenset(
    """a an the and or but of to in on at by for with from as is are was were be been being it
    its this that these those there here i you he she we they me him her us them my your his our
    their what which who whom whose when where why how do does did has have had so
    if then than too very can could would should will shall may might must just also into onto
    about over under up down out some any all each both such only own same other more most few
    image picture photo shows shown see seen appears appear""".split()
)
NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_TOKEN = re.compile(r"[a-z]+|\d+(?:\.\d+)?")


def normalise(token: str) -> str:
    token = NUMBER_WORDS.get(token, token)
    if token.isalpha() and len(token) > 3:
        if token.endswith("ies") and len(token) > 4:
            return token[:-3] + "y"
        if token.endswith(("ches", "shes", "sses", "xes")):
            return token[:-2]
        if token.endswith("s") and not token.endswith("ss"):
            return token[:-1]
    return token


def key_facts(text: str | None) -> set[str]:
    """The normalised content tokens of `text`."""
    tokens = (normalise(t) for t in _TOKEN.findall((text or "").lower()))
    return {t for t in tokens if t and t not in STOPWORDS}


def recall(reference: set[str], answer: set[str]) -> float:
    """Share of the reference's facts the answer states (1.0 for an empty reference)."""
    return len(reference & answer) / len(reference) if reference else 1.0


def f1(reference: set[str], answer: set[str]) -> float:
    """Harmonic mean of recall and precision of the answer's facts against the reference's."""
    common = len(reference & answer)
    if not common:
        return 0.0
    r, p = common / len(reference), common / len(answer)
    return 2 * r * p / (r + p)
