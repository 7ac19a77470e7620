"""Passages that appear in more than one place (a page that reprints another): exact copies
are grouped when the index loads, near-copies are recognised at query time."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

_SHINGLE = 5  # words per shingle when comparing passages for near-duplicates
_NEAR_DUPLICATE = 0.8  # share of the shorter passage's shingles found in the other

Shingles = set[tuple[str, ...]]


def _text_key(text: str) -> str:
    return hashlib.sha1(" ".join(text.lower().split()).encode()).hexdigest()


class DuplicateGroups:
    """Rows whose text (case and spacing aside) occurs in several places. Each group is
    stored once, with a group number per row: memory stays linear however many copies of
    one passage the corpus holds (a page mirrored 3,000 times)."""

    def __init__(self, texts: Sequence[str]) -> None:
        rows_by_text: dict[str, list[int]] = defaultdict(list)
        for row, text in enumerate(texts):
            rows_by_text[_text_key(text)].append(row)
        self.members = [
            np.array(rows, dtype=np.int64) for rows in rows_by_text.values() if len(rows) > 1
        ]
        self.group = np.full(len(texts), -1, dtype=np.int64)
        for number, rows in enumerate(self.members):
            self.group[rows] = number
        self.rows = int(sum(len(rows) for rows in self.members))  # rows that have a copy

    def copies_of(self, row: int) -> np.ndarray:
        """The other rows holding the same text as `row` (empty when it is unique)."""
        number = self.group[row]
        if number < 0:
            return self.group[:0]
        rows = self.members[number]
        return rows[rows != row]


def shingles(text: str) -> Shingles:
    words = text.lower().split()
    return {tuple(words[i : i + _SHINGLE]) for i in range(max(1, len(words) - _SHINGLE + 1))}


def _mostly_shared(shared: int, size_a: int, size_b: int) -> bool:
    return min(size_a, size_b) > 0 and shared / min(size_a, size_b) >= _NEAR_DUPLICATE


def is_near_duplicate(a: Shingles, b: Shingles) -> bool:
    """Whether most of the shorter passage is inside the other: the same article reprinted
    on another page, cut into windows at slightly different places."""
    return _mostly_shared(len(a & b), len(a), len(b))


class NearDuplicateFinder:
    """Remembers kept passages and finds the one a new passage nearly duplicates, through
    shared shingles: linear in the new passage's length, not in the number kept."""

    def __init__(self) -> None:
        self._sizes: list[int] = []
        self._owners: dict[tuple[str, ...], list[int]] = defaultdict(list)

    def twin_of(self, words: Shingles) -> int | None:
        shared: Counter[int] = Counter()
        for shingle in words:
            shared.update(self._owners.get(shingle, ()))
        for kept, count in shared.most_common():
            if _mostly_shared(count, len(words), self._sizes[kept]):
                return kept
        return None

    def add(self, words: Shingles) -> None:
        for shingle in words:
            self._owners[shingle].append(len(self._sizes))
        self._sizes.append(len(words))
