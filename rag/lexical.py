"""Keyword retrieval: BM25 (bm25s) over the same passages as the dense index, so that exact
names, numbers and rare words are found even where the embedding blurs them."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import numpy as np

# Words of two or more characters (the pattern bm25s shares with scikit-learn), and
# numbers written with dots or commas kept whole: "3.7", "0.104.0", "335,000" are what a
# question about a version or a figure names, and the word pattern drops or splits them.
_TOKEN_PATTERN = r"(?u)\b\d+(?:[.,]\d+)+\b|\b\w\w+\b"
# Bumped whenever what BM25 indexes changes for the same passages (the tokens, the text
# it sees): an older index rebuilds its keyword half (vectors reused), or it would not
# match the questions' tokens.
KEYWORD_VERSION = 4


@functools.cache
def _stemmer(stem: bool) -> Any:
    """One stemmer per process: tokenizing runs for every question and candidate answer."""
    if not stem:
        return None
    import Stemmer

    return Stemmer.Stemmer("english")


@functools.cache
def _stopwords(drop: bool) -> frozenset[str]:
    if not drop:
        return frozenset()
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


_SPLIT = re.compile(_TOKEN_PATTERN).findall


def tokenize(texts: list[str], stem: bool, stopwords: bool) -> list[list[str]]:
    """Lower-cased word tokens, optionally stemmed and without English stopwords: the steps
    of bm25s.tokenize (its pattern, its stopword list, the same stemmer), without the
    vocabulary and progress bars it builds on every call. A question tokenizes several
    times (BM25, answer spans, term weights), and those cost 0.3 ms a call; a test checks
    the tokens equal bm25s's."""
    drop, stemmer = _stopwords(stopwords), _stemmer(stem)
    tokens = []
    for text in texts:
        words = [w for w in _SPLIT(text.lower()) if w not in drop]
        tokens.append(stemmer.stemWords(words) if stemmer is not None and words else words)
    return tokens


class LexicalIndex:
    """A BM25 index of the passages, row i = chunk i, saved in the build folder."""

    def __init__(self, retriever: Any, stem: bool, stopwords: bool) -> None:
        self.retriever = retriever
        self.stem = stem
        self.stopwords = stopwords

    @classmethod
    def build(cls, texts: list[str], stem: bool, stopwords: bool) -> LexicalIndex:
        import bm25s

        retriever = bm25s.BM25()
        retriever.index(tokenize(texts, stem, stopwords), show_progress=False)
        return cls(retriever, stem, stopwords)

    def save(self, folder: Path) -> None:
        self.retriever.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path, stem: bool, stopwords: bool) -> LexicalIndex:
        import bm25s

        # Memory-mapped: a large keyword index is paged in as questions touch it.
        return cls(bm25s.BM25.load(str(folder), mmap=True), stem, stopwords)

    @property
    def size(self) -> int:
        return int(self.retriever.scores["num_docs"])

    def scores(self, question: str) -> np.ndarray:
        """BM25 score of every passage for `question` (zeros when no word is known)."""
        tokens = tokenize([question], self.stem, self.stopwords)[0]
        vocab = self.retriever.vocab_dict
        known = [t for t in tokens if t in vocab]
        if not known:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self.retriever.get_scores(known), dtype=np.float32)

    def term_weights(self, text: str) -> dict[str, float]:
        """The text's content terms with their inverse document frequency (Lucene's, as
        BM25 uses it); a term no passage holds weighs most. What a question is about is
        carried by its rare terms: a name matters more than "year"."""
        terms = set(tokenize([text], self.stem, self.stopwords)[0])
        vocab, indptr = self.retriever.vocab_dict, self.retriever.scores["indptr"]
        n = self.size
        weights = {}
        for term in terms:
            at = vocab.get(term)
            df = 0 if at is None or at + 1 >= len(indptr) else int(indptr[at + 1] - indptr[at])
            weights[term] = float(np.log(1 + (n - df + 0.5) / (df + 0.5)))
        return weights

    def unseen_share(self, question: str) -> float:
        """Share of the question's content words that no passage uses: a question about
        things the corpus never names is likely not answered by it."""
        tokens = tokenize([question], self.stem, self.stopwords)[0]
        if not tokens:
            return 0.0
        vocab = self.retriever.vocab_dict
        return sum(t not in vocab for t in tokens) / len(tokens)
