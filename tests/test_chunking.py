"""Chunker invariants, on the seeds and as properties of random documents."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.chunking import chunk_document, pack_windows, split_long_span
from rag.structure import analyze_layout

from .conftest import SEEDS

FURNITURE = re.compile(
    r"Please follow and like us|Exit mobile version|Home News|Copyright ©|Share This Story|"
    r"Continue Reading|Staff Writer|UltimatelySocial|Tags: ,"
)


def check_invariants(doc_id: str, text: str, size: int, overlap: int) -> list:
    chunks = chunk_document(doc_id, text, size, overlap)
    layout = analyze_layout(text)
    sentences = [s for b in layout.blocks if b.kind == "prose" for s in b.sentences]
    starts = {s for s, _ in sentences} | {b.start for b in layout.blocks if b.kind == "heading"}
    ends = {e for _, e in sentences} | {b.end for b in layout.blocks if b.kind == "heading"}
    long_sentences = [(s, e) for s, e in sentences if e - s > size]
    for i, chunk in enumerate(chunks):
        assert chunk.ordinal == i
        assert chunk.chunk_id == f"{doc_id}#{i}"
        assert text[chunk.start : chunk.end] == chunk.text  # exact slice
        assert chunk.text.strip() and chunk.text == chunk.text.strip()
        assert len(chunk.text) <= size
        inside_long = any(s <= chunk.start < e or s < chunk.end <= e for s, e in long_sentences)
        if not inside_long:  # whole sentences only, unless one sentence exceeds the limit
            assert chunk.start in starts, (chunk.start, chunk.text[:40])
            assert chunk.end in ends, (chunk.end, chunk.text[-40:])
    for s, e in sentences:  # every sentence of prose lands in some chunk
        assert any(c.start <= s and e <= c.end for c in chunks) or (e - s > size), text[s:e]
    return chunks


def test_seed_chunks_are_exact_clean_and_sectioned():
    for path in sorted(SEEDS.glob("*.txt")):
        text = path.read_bytes().decode("utf-8")
        chunks = check_invariants(path.name, text, 800, 150)
        assert chunks, path.name
        for chunk in chunks:
            assert not FURNITURE.search(chunk.text), (path.name, chunk.text[:80])
    text = (SEEDS / "003_bddc2f2a3ccead0c.txt").read_text(encoding="utf-8")
    chunks = chunk_document("003_bddc2f2a3ccead0c.txt", text, 800, 150)
    ashraf = next(c for c in chunks if "77 kilometers north of Baghdad" in c.text)
    assert ashraf.section == "Camp Ashraf and MEK’s relocation to Albania"
    lorry = next(c for c in chunks if "268 lorry drivers" in c.text)
    assert lorry.section == "A Dire Situation in Iran"
    # The long page is about ten articles: their headlines are sections.
    sections = {c.section for c in chunks}
    for headline in (
        "Report Marks 40 Years of Torture",
        "The UN Must Investigate the 1988 Massacre",
        "MEK Holds Rally in Warsaw to Mark Four Decades of Regime Atrocities Prior to Warsaw "
        "Summit",
    ):
        assert headline in sections


def test_overlap_carries_whole_sentences():
    text = "Heading Of A Story\n\n" + " ".join(f"Sentence number {i} is here." for i in range(40))
    chunks = chunk_document("d.txt", text, 200, 60)
    assert len(chunks) > 3
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start <= a.end  # neighbours share text
    for a, b in zip(chunks[:-2], chunks[1:-1], strict=True):
        assert a.end - b.start <= 60  # the last window alone is filled backwards
    assert len(chunks[-1].text) > 150


def test_over_long_sentence_is_cut_at_spaces():
    text = "word " * 100
    pieces = split_long_span(text, 0, len(text.rstrip()), 64)
    assert all(e - s <= 64 for s, e in pieces)
    assert all(text[s:e] == text[s:e].strip() for s, e in pieces)
    assert " ".join(text[s:e] for s, e in pieces) == text.strip()


def test_pack_windows_never_repeats_a_window():
    pieces = [(0, 90), (91, 180), (181, 270), (271, 290)]
    windows = pack_windows(pieces, 200, 100)
    assert len(set(windows)) == len(windows)
    assert windows[0] == (0, 180) and windows[-1][1] == 290


_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyzé", min_size=1, max_size=12)
_sentence = st.builds(
    lambda first, words, end: " ".join([first.capitalize(), *words]) + end,
    _word,
    st.lists(_word, min_size=2, max_size=40),
    st.sampled_from([".", "!", "?", ".”"]),
)
_paragraph = st.lists(_sentence, min_size=1, max_size=8).map(" ".join)
_heading = st.lists(_word, min_size=1, max_size=6).map(
    lambda ws: " ".join(w.capitalize() for w in ws)
)
_noise = st.sampled_from(
    ["Please follow and like us:", "Tags,More,Tags,Here", "https://x.org/a", "Copyright © Site"]
)
_block = st.one_of(_paragraph, _paragraph, _paragraph, _heading, _noise)
_document = st.tuples(
    st.lists(_block, min_size=1, max_size=25), st.sampled_from(["\n\n", "\n\n\n", "\r\n\r\n"])
).map(lambda parts: parts[1].join(parts[0]))


@settings(max_examples=150, deadline=None)
@given(_document, st.integers(100, 1200), st.integers(0, 300))
def test_properties_on_generated_documents(text, size, overlap):
    check_invariants("gen.txt", text, size, min(overlap, size - 1))


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=0, max_size=3000), st.integers(100, 600))
def test_properties_on_arbitrary_text(text, size):
    check_invariants("any.txt", text, size, size // 5)


def test_small_sections_join_under_the_heading_they_share():
    """A release note's version heading, its small sub-sections and their bullets make one
    passage under the heading they share; a section too long to join stays apart."""
    from rag.chunking import chunk_layout
    from rag.readers.markdown import read_markdown

    long_section = "A sentence about something else that keeps going for a while. " * 12
    source = (
        f"# Release Notes\n\n{long_section}\n\n"
        "## 0.104.0\n\n### Features\n\n- Add reference docs.\n\n"
        "### Upgrades\n\n- Drop support for Python 3.7.\n\n## 0.103.0\n\n"
        f"### Docs\n\n{long_section}\n"
    )
    got = read_markdown(source)
    chunks = chunk_layout("notes.md", got.text, got.layout, 300, 100)
    first = next(c for c in chunks if "0.104.0" in c.text)
    assert first.section == "Release Notes > 0.104.0"
    assert "0.104.0" in first.text and "Python 3.7" in first.text
    assert "0.103.0" not in first.text
    assert all(c.text == got.text[c.start : c.end] for c in chunks)
    # A heading with nothing under it but a section too long to join heads that section's
    # first passage, under the deeper path: no heading is left out of every passage.
    docs = [c for c in chunks if c.section == "Release Notes > 0.103.0 > Docs"]
    assert docs and docs[0].text.startswith("0.103.0\n\nDocs\n\nA sentence")
    for block in got.layout.blocks:
        if block.kind == "heading":
            assert any(c.start <= block.start and block.end <= c.end for c in chunks), block
    # An empty sub-section before a long section of another branch: the long section's
    # passages keep their own path.
    source = f"# T\n\n## 1.0.0\n\nShort note.\n\n### Deprecated\n\n## 2.0.0\n\n{long_section}\n"
    got = read_markdown(source)
    chunks = chunk_layout("notes.md", got.text, got.layout, 300, 100)
    later = [c for c in chunks if "else" in c.text]
    assert later and all(c.section == "T > 2.0.0" for c in later)


def test_retrieval_sees_the_file_name_words_and_the_heading():
    from rag.chunking import name_words, retrieval_text

    assert name_words("md/uvicorn-release-notes.md") == "uvicorn release notes"
    assert name_words("003_bddc2f2a3ccead0c.txt") == ""  # ids and hashes name nothing
    assert name_words("1402.txt") == ""
    seen = retrieval_text("md/uvicorn-release-notes.md", "0.34.0", "0.34.0\n\n- Drop 3.8")
    assert seen == "uvicorn release notes\n0.34.0\n\n- Drop 3.8"
    assert retrieval_text("a1.txt", "Title", "Text.") == "Title\nText."
