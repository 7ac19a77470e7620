"""Readers per format, on real public files (tests/data/realdocs, sources in its SOURCES.md)
and on real files damaged on purpose."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.readers import Extracted, Unreadable, extract
from rag.readers.markdown import read_markdown

DATA = Path(__file__).parent / "data" / "realdocs"


def _read(relative: str) -> Extracted:
    path = DATA / relative
    return extract(path, path.read_bytes())


def _headings(extracted: Extracted) -> list[str]:
    return [b.label for b in extracted.layout.blocks if b.kind == "heading"]


def _every_block_cites_its_text(extracted: Extracted) -> None:
    for block in extracted.layout.blocks:
        assert extracted.text[block.start : block.end].strip(), block
        for start, end in block.sentences:
            assert block.start <= start < end <= block.end


@pytest.mark.parametrize(
    "relative",
    [
        "md/background-tasks.md",
        "md/metadata.md",
        "html/en.wikipedia.org.tsne.html",
        "html/creativecommons.org.html",
        "pdf/multi_page.pdf",
        "docx/word_sample.docx",
        "docx/category-level.docx",
    ],
)
def test_every_reader_gives_text_with_blocks_that_slice_back(relative):
    extracted = _read(relative)
    assert len(extracted.text) > 500
    _every_block_cites_its_text(extracted)


def test_markdown_sections_code_lists_and_tables_without_markup():
    page = _read("md/background-tasks.md")
    assert page.title == "Background Tasks"
    assert "Background Tasks > Using BackgroundTasks" in _headings(page)
    assert "{ #" not in page.text and "{*" not in page.text  # anchors, snippet includes
    assert "- Email notifications sent after performing an action:" in page.text  # a list item
    metadata = _read("md/metadata.md")
    assert "terms_of_service | str | A URL to the Terms of Service" in metadata.text  # a table row
    assert "///" not in metadata.text  # admonition fences gone, their content kept


def test_markdown_front_matter_is_a_title_not_text():
    source = (
        "---\ntitle: Release Notes\nhide:\n  - navigation\n---\n\n"
        "## 1.0\n\nFirst.\n\n```\npip install x\n```\n"
    )
    page = read_markdown(source)
    assert page.title == "Release Notes"
    assert "hide" not in page.text and "navigation" not in page.text
    assert "pip install x" in page.text  # code is content


def test_a_first_heading_that_is_one_section_among_many_is_not_the_title():
    notes = _read("md/uvicorn-release-notes.md")  # "## 0.35.0 (June 28, 2025)" comes first
    assert notes.title == ""  # the file name serves (rag.passages)
    assert "0.35.0 (June 28, 2025)" in _headings(notes)
    assert read_markdown("# Guide\n\nText.\n\n## Part\n\nMore.\n").title == "Guide"
    assert read_markdown("## One\n\nText.\n\n## Two\n\nMore.\n").title == ""


def test_html_main_text_with_title_and_headings_without_page_furniture():
    page = _read("html/en.wikipedia.org.tsne.html")
    assert page.title.lower().startswith("t-distributed stochastic neighbor embedding")
    assert "Laurens van der Maaten" in page.text
    assert "Jump to navigation" not in page.text and "Retrieved from" not in page.text
    assert len(_headings(page)) >= 3


def test_pdf_text_by_page():
    paper = _read("pdf/multi_page.pdf")
    assert len(paper.page_starts) == 5
    at = paper.text.find("Christopher Latham Sholes")
    assert at >= 0 and paper.page_of(at) == 1
    assert paper.page_of(len(paper.text) - 2) == 5
    # A compound broken at a line end keeps its hyphen; a cut word is joined.
    assert "self-publishing" in paper.text and "selfpublishing" not in paper.text


def test_line_end_hyphens_join_cut_words_and_keep_compounds():
    from rag.readers.pdf import _page_text

    marked = "Exam\ufffeple self\ufffepublishing d\ufffedimensional FAA\ufffeapproved"
    assert _page_text(marked) == "Example self-publishing d-dimensional FAA-approved"
    assert _page_text("Über\ufffesetzung x2exam\ufffeple") == "Übersetzung x2example"
    assert _page_text("exam-\nple, Self-\npublishing, a d-\ndimensional re-\nturn") == (
        "example, Self-publishing, a d-dimensional return"
    )


def test_control_characters_of_undecoded_glyphs_are_no_text():
    """PDFium gives control characters for glyphs it cannot decode; printed by `rag show`
    they would drive the terminal, and they are nothing a reader sees."""
    import re

    import pypdfium2 as pdfium

    path = Path(__file__).parent / "data" / "pdf-controls" / "multi-column.pdf"
    controls = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
    pdf = pdfium.PdfDocument(str(path))
    raw = "".join(
        pdf[i].get_textpage().get_text_range().replace("\x02", "") for i in range(len(pdf))
    )
    pdf.close()
    assert controls.search(raw)  # the file does give some
    paper = extract(path, path.read_bytes())
    assert not controls.search(paper.text)
    assert "Dense Passage Retrieval" in paper.text
    _every_block_cites_its_text(paper)


PDF_LAYOUT = Path(__file__).parent / "data" / "pdf-layout"


def test_running_heads_and_feet_are_dropped_and_the_body_kept():
    """The title and page number repeated in each page's margins are no text of the pages
    after the first that has them: they opened answers ("54 THE SIEGE OF VICKSBURG. a good
    housekeeper..."). The first is kept (the same lines might be a table's column titles)."""
    import pypdfium2 as pdfium

    from rag.readers.pdf import _page_text

    for name, heads in [
        ("GeoBase_NHNC1_Data_Model_UML_EN.pdf", ["Data Model – Edition 1.0 2004-06", "GeoBase® "]),
        ("Seige_of_Vicksburg_Sample_OCR.pdf", ["SIEGE OF VICKSBURG", "VICKSBUEG", "SIEGE OP"]),
    ]:
        path = PDF_LAYOUT / name
        pdf = pdfium.PdfDocument(str(path))
        raw = [_page_text(pdf[i].get_textpage().get_text_range()) for i in range(len(pdf))]
        pdf.close()
        paper = extract(path, path.read_bytes())
        assert len(paper.page_starts) == len(raw)
        # On most pages before, once after (its first page; OCR's misreadings included).
        assert sum(head in page for head in heads for page in raw) >= 2 * len(raw) // 3
        for head in heads:
            assert paper.text.count(head) <= 1, (name, head)
        # Nothing else went: every other line of the pages is in the text, in order.
        kept = [
            " ".join(line.split())
            for page in raw
            for line in page.split("\n")
            if line.strip() and not any(head in line for head in heads)
        ]
        flat = " ".join(paper.text.split())
        at = 0
        for line in kept:
            at = flat.find(line, at)
            assert at >= 0, (name, line)
        _every_block_cites_its_text(paper)
        if name.startswith("Seige"):  # the second page opened with its head
            assert paper.text[paper.page_starts[1] :].startswith("buried itself in tie earth")


def test_a_pdf_outline_gives_the_sections_at_its_headings():
    """Bookmarks name their headings their own way ("III-A Google DeepDream" over "A. Google
    DeepDream"); each becomes a section where its heading line stands, nothing added to the
    text, and the passages under it cite it."""
    import pypdfium2 as pdfium

    path = PDF_LAYOUT / "issue-982-example.pdf"
    pdf = pdfium.PdfDocument(str(path))
    marks = [mark.get_title() for mark in pdf.get_toc()]
    pdf.close()
    paper = extract(path, path.read_bytes())
    headings = _headings(paper)
    assert len(marks) == len(headings) == 20
    assert "III. IMAGE DATA > A. Google DeepDream" in headings
    assert "Appendix A: Automatically generated Texts" in marks
    assert "AUTOMATICALLY GENERATED TEXTS > A. Shakespeare" in headings
    # the heading lines are the page's own, once each: no title was added to the text
    assert paper.text.count("A. Google DeepDream") == 1
    dream = next(b for b in paper.layout.blocks if b.label.endswith("A. Google DeepDream"))
    assert paper.text[dream.start : dream.end] == "A. Google DeepDream"
    assert paper.page_of(dream.start) == 2
    _every_block_cites_its_text(paper)


def test_lines_near_the_margins_that_repeat_on_few_pages_are_kept():
    """A dense table's rows reach into the margins: a row like another stands on a page or
    two nearby, not on most, and rows differ in their figures. A head on most pages nearby
    goes but for its first, page numbers counting up with the pages too."""
    from rag.readers.pdf import _running

    row = "11/20/2015 09/28/2015 Boeing Company Huntington Beach 23"
    towns = ["Reno", "Tulsa", "Fresno", "Eugene", "Boise", "Dallas", "Mobile", "Akron", "Waco"]
    margins = [
        ["Annual report 2016", f"Person{n * n} Sales 1000 2020-01-0{n}", f"Acme {town}", str(n + 1)]
        for n, town in enumerate(towns)
    ]
    margins[4].append(row)
    margins[6].append(row.replace("Huntington", "Long"))
    running = _running(margins)
    assert "annualreport2016" not in running[0]
    assert all({"annualreport2016", str(n + 1)} <= keys for n, keys in enumerate(running) if n)
    assert not any(key.startswith(("boeing", "person", "acme")) for ks in running for key in ks)
    # the same figure on every page is no page number; labelled ones count up too
    assert not any("7" in keys for keys in _running([["7"] for _ in range(9)]))
    assert all(
        f"st{n + 2}" in keys for n, keys in enumerate(_running([[f"ST-{n + 2}"] for n in range(9)]))
    )
    # a figure inside a line that counts up with the pages is a page's too ("Frm 00002")
    feet = _running([[f"VerDate Sep<11>2014 Frm 0000{n} Fmt 4702"] for n in range(9)])
    assert all(len(keys) == 1 for keys in feet[1:]) and not feet[0]


@pytest.mark.parametrize(
    ("lines", "joined"),
    [
        ("internet https://\nwww.myboeingfleet.com. You", "https://www.myboeingfleet.com. You"),
        ("at https://x.gov/R.aspx?mode=\nPublication&doctype=M", "R.aspx?mode=Publication&doc"),
        ("http://www.bbc.co.uk/blogs/\nentries/\n78691781-c9b7", "blogs/entries/78691781-c9b7"),
        # An address that had ended stays apart from what follows.
        ("https://github.com/acme/tool/\nunder the MIT license", "tool/ under the MIT"),
        ("Go to https://www.regulations.gov.\nFollow the", "regulations.gov. Follow the"),
        ("http://prize.hutter1.net/\n[HZRS15] K. He", "hutter1.net/ [HZRS15] K. He"),
        ("nih.gov/pubmed/15496625.\n3. Cooper DS", "15496625. 3. Cooper DS"),
    ],
)
def test_web_addresses_cut_at_a_line_end_are_joined(lines, joined):
    from rag.readers.pdf import _reflow

    assert joined in _reflow(lines)
    assert _reflow(lines).replace(" ", "") == lines.replace("\n", "").replace(" ", "")


SMALL = Path(__file__).parent / "data" / "small"


def test_a_pdf_with_little_text_and_no_images_is_read_and_a_scan_is_not():
    """A one-word page is a document, not a scan: only pages with images and (almost) no
    text are skipped as having no text layer."""
    note = extract(SMALL / "metadata.pdf", (SMALL / "metadata.pdf").read_bytes())
    assert "Whatever" in note.text and note.title == "The Title"
    with pytest.raises(Unreadable) as caught:
        extract(SMALL / "box.pdf", (SMALL / "box.pdf").read_bytes())
    assert caught.value.reason == "no text layer" and "scanned images" in caught.value.detail


def test_a_web_page_without_a_main_text_is_read_by_its_paragraphs():
    """trafilatura finds no article in this page; its paragraphs are still its text."""
    page = extract(SMALL / "utf8.html", (SMALL / "utf8.html").read_bytes())
    assert page.title == "Unicode Demo"
    assert "Markus Kuhn" in page.text and "The ASCII compatible UTF-8 encoding" in page.text
    assert "<p>" not in page.text and len(page.text) > 5000
    _every_block_cites_its_text(page)


@pytest.mark.parametrize(
    ("relative", "reason"),
    [("pdf/libreoffice-writer-password.pdf", "encrypted"), ("pdf/linn.pdf", "no text layer")],
)
def test_pdfs_without_text_are_refused_with_the_reason(relative, reason):
    with pytest.raises(Unreadable) as caught:
        _read(relative)
    assert caught.value.reason == reason


def test_damaged_files_are_refused_not_crashed(tmp_path: Path):
    pdf = (DATA / "pdf/multi_page.pdf").read_bytes()
    with pytest.raises(Unreadable) as caught:
        extract(tmp_path / "cut.pdf", pdf[: len(pdf) // 3])
    assert caught.value.reason == "broken"
    docx = (DATA / "docx/word_sample.docx").read_bytes()
    with pytest.raises(Unreadable) as caught:
        extract(tmp_path / "cut.docx", docx[: len(docx) // 2])
    assert caught.value.reason == "broken"
    with pytest.raises(Unreadable) as caught:
        extract(tmp_path / "page.odt", b"anything")
    assert caught.value.reason == "unsupported extension"


def test_docx_headings_lists_and_tables_in_document_order():
    sample = _read("docx/word_sample.docx")
    assert sample.title == "Swimming in the lake"
    assert "Grain | Corn, Buckwheat, Barley | 200" in sample.text
    assert "- Paddle about" in sample.text
    assert sample.text.index("Let’s swim!") < sample.text.index("Grain | Corn")
    moby = _read("docx/category-level.docx")
    assert any(label.endswith("A Heading 1") for label in _headings(moby))
    assert "Manhattoes" in moby.text
