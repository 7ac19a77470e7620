"""What a question asks for (a number, a date, a name, a place, a version, a command, an
e-mail or web address) and whether a span carries it as new information: "How many ... ?"
is not answered by a sentence whose only number is the one the question already names.

Rules rather than a tagger: the question words that ask for a type are few and fixed in
English, and the span side needs only "is there a number / a date / a proper name here that
the question does not already hold". The packaged English NER models installable here are
unofficial re-uploads; these rules cost microseconds per span.
"""

from __future__ import annotations

import re
from typing import Literal

Expected = Literal["number", "date", "name", "place", "version", "command", "contact", "any"]

_ASKS: list[tuple[Expected, re.Pattern[str]]] = [
    # Documentation and release notes: "Which FastAPI version dropped ...?", "What command
    # starts the container?" (before "date": "which release" is not "which year").
    ("version", re.compile(r"\b(which|what|in what) ([\w\-.]+ ){0,2}(version|release)\b")),
    (
        "command",
        re.compile(r"\b((what|which) ([\w\-]+ ){0,2}command|what do (you|they|i|we) (run|type))\b"),
    ),
    # "What is the author's contact email?", "Which URL ...?" (before "number": a phone
    # number is asked as a contact only when it says so).
    (
        "contact",
        re.compile(r"\b(what|which) ([\w\-']+ ){0,4}(e-?mail( address)?|url|web address)\b"),
    ),
    (
        "date",
        re.compile(
            r"\b(when|what (year|date|day|month|time)|which (year|date|day|month)|"
            r"in what year|on what (date|day))\b"
        ),
    ),
    (
        "number",
        re.compile(
            r"\b(how (many|much|long|old|far|often|large|big|high)|how many|(what|which) "
            r"([\w\-]+ ){0,2}(number|percentage|share|proportion|amount|age|score|rate|size|"
            r"price|cost|fee|temperature|speed|distance|population|salary|budget)s?)\b"
        ),
    ),
    (
        "place",
        re.compile(
            r"\b(where|(what|which) ([\w\-]+ )?(city|country|town|village|place|prison|"
            r"region|province|capital))\b"
        ),
    ),
    (
        "name",
        re.compile(
            r"\b(who|whom|whose|what (is|was|were) the names?|which ([\w\-]+ )?(person|"
            r"official|man|woman|group|organi[sz]ation|minister|leader|author|writer|cleric|director|"
            r"spokes(person|man|woman)|politician|lawmaker|publication|newspaper|website))\b"
        ),
    ),
]

_MONTHS = (
    "january february march april may june july august september october november december"
).split()
_NUMBER_WORDS = frozenset(
    """one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
    sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety
    hundred hundreds thousand thousands million millions billion dozen dozens half once twice
    several""".split()
)
_NUMBER = re.compile(r"\d[\d,.]*")
_VERSION = re.compile(r"\bv?\d+(?:\.\d+)+\b")
# A command line as documentation shows one: after a shell prompt, or a lower-case program
# name followed by options ("docker run -d -p 80:80 myimage"), with no sentence around it.
_PROMPT = re.compile(r"^\s*[$>%]\s+\S")
_COMMAND_LINE = re.compile(r"^\s*[a-z][\w.\-]*(\s+\S+)*\s+-{1,2}\w[\w\-=]*(\s+\S+)*\s*$")
_CONTACT = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+|\bhttps?://\S+|\bwww\.\S+")
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)s?\b")
_WORD = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ][\w'’\-]*")
_TOKENS = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ][\w'’\-]*|[^\sA-Za-zÀ-ÖØ-öø-ÿ]+")
# Capitalized words that start sentences or name no one.
_NOT_NAMES = frozenset(
    """a an and as at but by for from he her his i if in into it its of on or our she so the
    their them then there these they this those to we what when where which while who why with
    you your after before during however according also although because since yet""".split()
)


def _common_words() -> frozenset[str]:
    """Words that start sentences capitalized without naming anyone: stopwords (bm25s's
    extended English list) and the few above."""
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return _NOT_NAMES | frozenset(STOPWORDS_EN_PLUS)


_COMMON = _common_words()


def expected_type(question: str) -> Expected:
    """The kind of answer the question's wording asks for ("any" when none is fixed)."""
    q = question.lower()
    for kind, pattern in _ASKS:
        if pattern.search(q):
            return kind
    return "any"


def values_of(text: str, kind: Expected) -> set[str]:
    """The values of `kind` in `text`, lower-cased: counts and amounts (years aside), dates,
    full names (two or more capitalized words in a row), place names, version numbers,
    command lines, or e-mail addresses and web addresses."""
    words = _WORD.findall(text)
    if kind == "version":
        return {m.group().lower().lstrip("v") for m in _VERSION.finditer(text)}
    if kind == "command":
        return {
            line.strip().lower()
            for line in text.splitlines()
            if _PROMPT.match(line)
            or (_COMMAND_LINE.match(line) and not line.rstrip().endswith("."))
        }
    if kind == "contact":
        return {m.group().lower().rstrip(".,;)") for m in _CONTACT.finditer(text)}
    if kind == "number":
        found = {m.group().rstrip(".,") for m in _NUMBER.finditer(text)}
        found = {n for n in found if not _YEAR.fullmatch(n)}
        return found | ({w.lower() for w in words} & _NUMBER_WORDS)
    if kind == "date":
        found = {m.group() for m in _YEAR.finditer(text)}
        return found | ({w.lower() for w in words} & set(_MONTHS))
    if kind == "place":
        return {w.lower() for w in words if _is_name(w)}
    if kind == "name":
        names, run = set(), []
        for token in _TOKENS.findall(text) + [""]:
            if _is_name(token):
                run.append(token.lower())
                continue
            if len(run) >= 2:
                names.add(" ".join(run))
            run = []
        return names
    return set()


def _is_name(word: str) -> bool:
    return len(word) > 1 and word[0].isupper() and word.lower() not in _COMMON


def carries_new(span: str, question: str, kind: Expected) -> bool:
    """Whether `span` holds a value of `kind` that the question does not already name
    (always true when the question fixes no kind)."""
    if kind == "any":
        return True
    asked = values_of(question, kind)
    if kind == "name":  # a name is new when it has a word the question does not use
        used = {w.lower() for w in _WORD.findall(question)}
        return any(set(name.split()) - used for name in values_of(span, kind))
    return bool(values_of(span, kind) - asked)
