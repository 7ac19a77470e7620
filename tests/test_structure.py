"""Page layout: headings, prose and boilerplate found by what lines look like."""

from __future__ import annotations

from rag.structure import analyze_layout, split_sentences

from .conftest import SEEDS


def _kinds(text: str) -> dict[str, str]:
    layout = analyze_layout(text)
    return {text[b.start : b.end]: b.kind for b in layout.blocks}


FURNITURE = [
    "Staff Writer",
    "Please follow and like us:",
    "Storms,Coast,Weather,Harbour,Rescue",
    "https://example.org/share/123",
    "Copyright © 2024 Example. All Rights Reserved",
    "Exit mobile version",
]


def test_scraped_page_furniture_is_boilerplate():
    page = "\n\n".join(
        [
            "Home News World A Storm Hits the Coast",
            "A Storm Hits the Coast",
            "The storm reached the coast on Monday and flooded three towns near the harbour.",
            "Rescue teams worked through the night to reach families on the roofs.",
            *FURNITURE,
        ]
    )
    kinds = _kinds(page)
    assert kinds["A Storm Hits the Coast"] == "heading"
    assert kinds["Home News World A Storm Hits the Coast"] == "boilerplate"
    for furniture in FURNITURE:
        assert kinds[furniture] == "boilerplate", furniture
    assert kinds["Rescue teams worked through the night to reach families on the roofs."] == "prose"


def test_a_byline_with_its_date_is_text():
    """A reader may ask when an article was published: the byline's fields are indexed."""
    text = (SEEDS / "004_344e65d2d89902b4.txt").read_text(encoding="utf-8")
    layout = analyze_layout(text)
    byline = next(b for b in layout.blocks if "Published On" in text[b.start : b.end])
    assert byline.kind == "prose" and "December 5, 2018" in text[byline.start : byline.end]
    assert layout.title == "Amnesty International's report on the 1988 massacre"


def test_a_byline_answers_when_an_article_was_published(seed_pipeline):
    question = "When was the article on Amnesty's 1988 report published?"
    for mode, k in (("bm25", 5), ("hybrid", 10)):
        hits = seed_pipeline.ask(question, k=k, mode=mode).hits
        assert any("December 5, 2018" in h.text for h in hits), mode


def test_caption_repeated_around_headline_is_boilerplate():
    page = "Photo of the harbour\n\nHarbour Reopens After Storm\n\nPhoto of the harbour\n\n" + (
        "The harbour reopened on Friday after a week of repairs to the main pier."
    )
    kinds = _kinds(page)
    assert kinds["Harbour Reopens After Storm"] == "heading"
    assert analyze_layout(page).title == "Harbour Reopens After Storm"


def test_markdown_headings_and_wrapped_paragraphs():
    text = (
        "# Guide\n\nThis paragraph is wrapped over two lines because it is long enough to\n"
        "need it, and it ends with a full stop.\n\n## Install\n\nRun the installer first.\n"
    )
    layout = analyze_layout(text)
    assert layout.title == "Guide"
    headings = [b.label for b in layout.blocks if b.kind == "heading"]
    assert headings == ["Guide", "Install"]
    prose = [b for b in layout.blocks if b.kind == "prose"]
    assert len(prose) == 2 and "\n" in text[prose[0].start : prose[0].end]


def test_sentences_respect_abbreviations_and_quotes():
    text = "Dr. Smith met Mr. J. Doe in the U.S. capital. “It went well,” he said. Then they left!"
    spans = split_sentences(text, 0, len(text))
    assert [text[s:e] for s, e in spans] == [
        "Dr. Smith met Mr. J. Doe in the U.S. capital.",
        "“It went well,” he said.",
        "Then they left!",
    ]


def test_dot_leaders_do_not_end_a_sentence():
    text = "AOA sensor system test ....... 40 work-hours = $3,400. Then it ends... Here."
    spans = split_sentences(text, 0, len(text))
    assert [text[s:e] for s, e in spans] == [
        "AOA sensor system test ....... 40 work-hours = $3,400.",
        "Then it ends...",
        "Here.",
    ]


def test_seed_titles():
    titles = {
        p.name: analyze_layout(p.read_text(encoding="utf-8")).title for p in SEEDS.glob("*.txt")
    }
    assert titles["000_3adcc106da112fc4.txt"].startswith("MEK Political Prisoners Verify")
    assert titles["001_ef5df5d5046c4c46.txt"].startswith("Amnesty International Welcomes UN")
    assert titles["003_bddc2f2a3ccead0c.txt"] == "Posts Tagged ‘1988 Massacre’"
    assert (
        titles["004_344e65d2d89902b4.txt"] == "Amnesty International's report on the 1988 massacre"
    )


def test_a_list_run_into_one_line_splits_at_its_bullets():
    """PDF text of a bulleted list: "... publishing. • Screenwriting Software: ... • Fax:"."""
    text = (
        "It suits publishing. • Screenwriting Software: tools like Final Draft and Celtx "
        "handle scripts. • Fax: 202–493–2251. • Mail: U.S. Department of Transportation"
    )
    spans = split_sentences(text, 0, len(text))
    assert [text[s:e] for s, e in spans] == [
        "It suits publishing.",
        "• Screenwriting Software: tools like Final Draft and Celtx handle scripts.",
        "• Fax: 202–493–2251.",
        "• Mail: U.S. Department of Transportation",
    ]
    # A bullet that opens the text, or a bullet glyph inside a word, starts nothing.
    assert split_sentences("• One item", 0, 10) == [(0, 10)]
    assert split_sentences("a•b c", 0, 5) == [(0, 5)]
