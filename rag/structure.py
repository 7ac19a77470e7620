"""What each part of a page is: heading, prose or boilerplate, and where its sentences are.

Scraped pages carry navigation, captions, bylines and share buttons around the article.
They are recognised by what the lines look like, not by a list of known strings:

- a line repeated close to itself (an image caption around its headline) or three times in
  one page (a byline, a "continue reading" link) is page furniture;
- a line with no letters, a bare URL, a copyright notice or a comma-separated tag list is
  metadata; a run of `Key: value` fields (a byline: "Published On: December 5, 2018
  Categories: ...") is kept as text of its own, since a reader may ask for its date;
- a line that ends with the heading below it is a breadcrumb;
- a short, unpunctuated line is a heading only when prose follows it closely; otherwise
  (a share button, a "read more" link, a footer) it is boilerplate.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["heading", "prose", "boilerplate"]

# A line shorter than this that is not the last of its block ends a block early: wrapped
# prose lines are long, headings and list items are short.
_WRAPPED_LINE_CHARS = 60
_PROSE_MIN_WORDS = 4
_LONG_LINE_WORDS = 15
_TITLE_MAX_WORDS = 25
_NEARBY_REPEAT = 3  # a line seen again within this many blocks is a caption
_PAGE_REPEAT = 3  # a short line seen this often in a page is furniture
_HEADING_LOOKAHEAD = 3  # blocks a heading may stand above its prose

_MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_WORD = re.compile(r"[^\W\d_][\w'’\-]*")
_URL = re.compile(r"^(?:https?://|www\.)\S+$", re.IGNORECASE)
_FIELD = re.compile(r"[^\W\d_]{2,}:(?:\s|$)")
_CLOSERS = "\"'”’)]»"
_TERMINAL = ".!?…"
_SMALL_WORDS = frozenset(
    "a an and as at but by for from in into of on or the to with vs via nor per".split()
)
_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof st jr sr vs etc e.g i.e u.s u.k u.n no nos inc ltd co corp gen col
    lt sgt capt rev hon gov sen rep fig approx dept est jan feb mar apr jun jul aug sep sept
    oct nov dec mt ft al""".split()
)
# A sentence ends at terminal punctuation (plus closing quotes) followed by space and a
# capital, a digit or an opening quote.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]»]*(?=\s+[\"'“‘(\[«]?[A-Z0-9À-ÖØ-Þ])")
# A list that PDF or HTML extraction ran into one line ("... publishing. • Screenwriting
# Software: ...  • Legal ..."): each bullet starts a sentence, whatever came before it.
_INLINE_BULLET = re.compile(r"(?<=\S)\s+(?=[•▪◦‣●■]\s)")


# Between the headings of a section path: "Tutorial > Query parameters > Required".
SECTION_SEPARATOR = " > "
CELL_SEPARATOR = " | "  # readers write a table a row a line, its cells joined by this


@dataclass(frozen=True)
class Block:
    """A stretch of the text: `text[start:end]` with surrounding whitespace excluded."""

    start: int
    end: int
    kind: Kind
    label: str = ""  # heading text without markup, for headings
    sentences: tuple[tuple[int, int], ...] = field(default=())


@dataclass(frozen=True)
class Layout:
    """A document's blocks in order and its title."""

    title: str
    blocks: tuple[Block, ...]


def _line_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-blank line, stripped of surrounding whitespace."""
    spans = []
    pos = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped:
            lead = len(line) - len(line.lstrip())
            spans.append((pos + lead, pos + lead + len(stripped)))
        pos += len(line)
    return spans


def _raw_blocks(text: str) -> list[tuple[int, int]]:
    """Paragraphs (runs of non-blank lines), split into lines when they hold short lines."""
    blocks: list[list[tuple[int, int]]] = []
    previous_end = -1
    for start, end in _line_spans(text):
        gap = text[previous_end:start] if previous_end >= 0 else ""
        if blocks and gap.count("\n") <= 1 and gap.strip() == "":
            blocks[-1].append((start, end))
        else:
            blocks.append([(start, end)])
        previous_end = end
    result: list[tuple[int, int]] = []
    for lines in blocks:
        # Wrapped prose: long lines ending in a full sentence. Anything else (a heading
        # over its paragraph, a list, a byline) is taken a line at a time.
        one_per_line = (
            any(end - start < _WRAPPED_LINE_CHARS for start, end in lines[:-1])
            or any(_MD_HEADING.match(text[start:end]) for start, end in lines)
            or not _ends_sentence(text[lines[-1][0] : lines[-1][1]])
        )
        if one_per_line:
            result.extend(lines)
        else:
            result.append((lines[0][0], lines[-1][1]))
    return result


def _normalize(s: str) -> str:
    return " ".join(s.lower().split())


def _ends_sentence(s: str) -> bool:
    s = s.rstrip(_CLOSERS + " ")
    return bool(s) and s[-1] in _TERMINAL


def _is_title_case(words: list[str]) -> bool:
    content = [w for w in words if w.lower() not in _SMALL_WORDS]
    if len(words) < 2 or len(words) > _TITLE_MAX_WORDS or not content:
        return False
    return sum(w[0].isupper() for w in content) / len(content) >= 0.75


def _is_tag_list(s: str) -> bool:
    items = [item.strip() for item in s.split(",")]
    if len(items) < 4 or _ends_sentence(s):
        return False
    sizes = sorted(len(item.split()) for item in items)
    return sizes[len(sizes) // 2] <= 4


def _is_metadata(s: str) -> bool:
    return not _WORD.search(s) or bool(_URL.match(s)) or "©" in s or _is_tag_list(s)


def _is_fields(s: str) -> bool:
    """A short run of `Key: value` fields: a byline or a dateline."""
    short = not _ends_sentence(s) and len(_WORD.findall(s)) < _LONG_LINE_WORDS
    return short and len(_FIELD.findall(s)) >= 2


def _shape(s: str) -> Kind | Literal["candidate"]:
    """First look at one block alone."""
    if _is_metadata(s):
        return "boilerplate"
    if _is_fields(s):
        return "prose"
    words = _WORD.findall(s)
    if _is_title_case(words):
        return "candidate"
    if (_ends_sentence(s) and len(words) >= _PROSE_MIN_WORDS) or len(words) >= _LONG_LINE_WORDS:
        return "prose"
    return "candidate"


def split_sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence spans within `text[start:end]`, whitespace between them excluded."""
    spans = []
    cursor = start
    bullets = [(m.start(), m.start()) for m in _INLINE_BULLET.finditer(text, start, end)]
    ends = [(m.end(), m.start()) for m in _SENTENCE_END.finditer(text, start, end)]
    for stop, mark in sorted(bullets + ends):
        if stop <= cursor:
            continue  # a bullet right after a sentence's end: one boundary
        if stop != mark:  # terminal punctuation, not a bullet
            if text.count(".", mark, stop) >= 4:
                continue  # dot leaders of a table or contents line ("test ...... $3,400")
            before = text[cursor:mark].split()
            last_word = before[-1].lower().strip("\"'“‘(") if before else ""
            if last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha()):
                continue
        spans.append((cursor, stop))
        cursor = stop
        while cursor < end and text[cursor].isspace():
            cursor += 1
    if cursor < end:
        tail_end = end
        while tail_end > cursor and text[tail_end - 1].isspace():
            tail_end -= 1
        if tail_end > cursor:
            spans.append((cursor, tail_end))
    return spans


def analyze_layout(text: str, fallback_title: str = "") -> Layout:
    """Classify every block of `text` and find the document's title."""
    spans = _raw_blocks(text)
    strings = [text[s:e] for s, e in spans]
    kinds: list[str] = []
    labels: list[str] = []
    for s in strings:
        md = _MD_HEADING.match(s)
        if md:
            kinds.append("heading")
            labels.append(md.group(2))
        else:
            kinds.append(_shape(s))
            labels.append(" ".join(s.split()))

    keys = [_normalize(s) for s in strings]
    counts = Counter(k for k, kind in zip(keys, kinds, strict=True) if kind != "prose")
    for i, key in enumerate(keys):
        if kinds[i] == "heading" and _MD_HEADING.match(strings[i]):
            continue
        nearby = keys[i + 1 : i + 1 + _NEARBY_REPEAT]
        if key in nearby:
            kinds[i] = "boilerplate"
            kinds[i + 1 + nearby.index(key)] = "boilerplate"
        elif kinds[i] == "candidate" and counts[key] >= _PAGE_REPEAT:
            kinds[i] = "boilerplate"

    # Breadcrumb: "Home News Topic <headline>" just above "<headline>".
    for i in range(len(keys) - 1):
        if kinds[i] == "candidate" and kinds[i + 1] in ("candidate", "heading"):
            if keys[i] != keys[i + 1] and keys[i].endswith(keys[i + 1]):
                kinds[i] = "boilerplate"

    title = next(
        (labels[i] for i, kind in enumerate(kinds) if kind in ("heading", "candidate")),
        fallback_title,
    )

    for i, kind in enumerate(kinds):
        if kind != "candidate":
            continue
        ahead = kinds[i + 1 : i + 1 + _HEADING_LOOKAHEAD]
        if strings[i].rstrip().endswith(":"):
            # A lead-in ("...at the following addresses:") belongs to the prose it opens.
            kinds[i] = "prose" if ahead[:1] == ["prose"] else "boilerplate"
        else:
            kinds[i] = "heading" if "prose" in ahead else "boilerplate"

    blocks = []
    for (start, end), kind, label in zip(spans, kinds, labels, strict=True):
        sentences = tuple(split_sentences(text, start, end)) if kind == "prose" else ()
        blocks.append(
            Block(start, end, kind, label if kind == "heading" else "", sentences)  # type: ignore[arg-type]
        )
    return Layout(title=title, blocks=tuple(blocks))
