"""HTML report: parsed structure, embedded PNGs, escaping, self-containment."""

from __future__ import annotations

import base64
from html.parser import HTMLParser

import pandas as pd
import pytest
from matplotlib.figure import Figure

from vlm_brain.reporting.html import (
    _CSS,
    PNG_SIGNATURE,
    Section,
    figure_to_png,
    render_report,
    table_html,
)

EVIL = "<script>alert('x')</script>"
BANNER = "RANDOM WEIGHTS: these numbers test the pipeline, not the models"


class Page(HTMLParser):
    """Collects start tags with their attributes and the text of the document."""

    def __init__(self, document: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(document)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for t, attrs in self.tags if t == tag]

    @property
    def ids(self) -> list[str]:
        return [attrs["id"] for _, attrs in self.tags if "id" in attrs]


def tiny_png(color: str) -> bytes:
    fig = Figure(figsize=(0.5, 0.5))
    fig.add_subplot().plot([0, 1], [0, 1], color=color)
    return figure_to_png(fig, dpi=40)


@pytest.fixture(scope="module")
def figures() -> dict[str, bytes]:
    return {"encoding": tiny_png("red"), "ablation": tiny_png("blue"), "extra": tiny_png("k")}


@pytest.fixture(scope="module")
def sections() -> list[Section]:
    table = pd.DataFrame({"network": ["Visual", EVIL], "r": [0.123456, 1234.5678], "n": [3, 4]})
    return [
        Section(
            title="Encoding",
            paragraphs=["Mean r per network.", EVIL],
            tables=[("r per network " + EVIL, table)],
            figures=["encoding"],
        ),
        Section(title="Ablation " + EVIL, figures=["ablation", "encoding"], html="<em>trusted</em>"),
    ]


@pytest.fixture(scope="module")
def document(sections, figures) -> str:
    meta = {"weights": "random (seed 0)", "data": EVIL}
    return render_report("Report " + EVIL, sections, figures, banner=BANNER, meta=meta)


def embedded_images(page: Page) -> dict[str, bytes]:
    images = {}
    for attrs in page.find("img"):
        prefix, data = attrs["src"].split(",", 1)
        assert prefix == "data:image/png;base64"
        assert attrs["alt"] not in images
        images[attrs["alt"]] = base64.b64decode(data, validate=True)
    return images


def test_figure_to_png_gives_png_bytes():
    assert tiny_png("red").startswith(PNG_SIGNATURE)


def test_every_figure_is_embedded_once_as_decodable_png(document, figures):
    page = Page(document)
    images = embedded_images(page)
    assert images == figures  # once each, byte for byte, including the unplaced one
    assert all(png.startswith(PNG_SIGNATURE) for png in images.values())
    assert sorted(a["id"] for a in page.find("figure")) == sorted(f"fig-{n}" for n in figures)
    assert "See figure" in document  # the second mention of "encoding" links to it
    assert {a["href"] for a in page.find("a")} >= {"#fig-encoding"}


def test_unplaced_figures_get_their_own_section(document):
    page = Page(document)
    assert "Other figures" in page.text


def test_user_text_is_escaped(document):
    page = Page(document)
    assert page.find("script") == []
    text = "".join(page.text)
    # title, paragraph, caption, table cell, section title and meta value
    assert text.count(EVIL) >= 6
    assert "&lt;script&gt;" in document


def test_trusted_section_html_is_inserted(document):
    assert Page(document).find("em") == [{}]


def test_banner_is_at_the_top(document):
    page = Page(document)
    (banner,) = [a for a in page.find("div") if a.get("class") == "banner"]
    assert banner["role"] == "alert"
    assert BANNER in page.text
    assert document.index(BANNER) < document.index("<section")


def test_meta_table_of_contents_and_ids(document):
    page = Page(document)
    assert "random (seed 0)" in page.text
    ids = page.ids
    assert len(ids) == len(set(ids))
    toc = [a["href"] for a in page.find("a") if a["href"].startswith("#sec-")]
    assert len(toc) == 3  # two sections and "Other figures"
    assert all(href[1:] in ids for href in toc)


def test_floats_have_three_significant_digits(document):
    page = Page(document)
    assert "0.123" in page.text and "1,235" in page.text
    assert "0.123456" not in document
    assert len(page.find("table")) == 1 and len(page.find("caption")) == 1


def test_numbers_and_p_values_print_consistently():
    from vlm_brain.reporting.html import format_number, format_p

    assert [format_number(x) for x in (0.3, 0.327, 12.0, 100.0, 1234.5, -0.0421, 0.0)] == [
        "0.300", "0.327", "12.0", "100", "1,234", "-0.0421", "0"]
    assert [format_p(p) for p in (0.0, 2.09e-223, 5e-5, 0.00012, 0.0312, float("nan"))] == [
        "< 1e-4", "< 1e-4", "< 1e-4", "0.00012", "0.031", ""]
    table = table_html("t", pd.DataFrame({"p": [0.0, 0.03], "wilcoxon_p": [1e-9, 0.2], "r": [0.3, 0.327]}))
    assert table.count("&lt; 1e-4") == 2 and "0.300" in table and "2.09e-223" not in table


def test_document_is_self_contained(document):
    page = Page(document)
    assert document.startswith("<!DOCTYPE html>")
    assert page.find("link") == [] and page.find("script") == []
    for _, attrs in page.tags:
        for name in ("src", "href"):
            value = (attrs.get(name) or "").lower()
            assert not value.startswith(("http://", "https://", "//")), value
    assert "http://" not in document and "https://" not in document


def test_missing_figure_is_named(figures):
    sections = [Section("A", figures=["encoding", "missing one"])]
    with pytest.raises(ValueError, match="missing one"):
        render_report("t", sections, figures)


def test_non_png_figure_is_rejected():
    with pytest.raises(ValueError, match="'fake'"):
        render_report("t", [Section("A", figures=["fake"])], {"fake": b"GIF89a"})


def test_minimal_report_without_banner_or_meta():
    page = Page(render_report("Only text", [Section("Intro", ["hello"])], {}))
    assert [a for a in page.find("div") if a.get("class") == "banner"] == []
    assert page.find("dl") == [] and page.find("img") == []
    assert "hello" in page.text


def test_wide_tables_wrap_their_headers_not_their_cells():
    table = table_html("t", pd.DataFrame({"planted_frac": [0.6], "best_layer": ["meter.fusion_text_cross.L02"],
                                          "wilcoxon_p": [1e-9]}))
    page = Page(table)
    assert [t.strip() for t in page.text if t.strip()][:4] == ["t", "planted frac", "best layer", "wilcoxon p"]
    assert "&lt; 1e-4" in table  # still read as a p-value
    assert "table.data td { white-space: nowrap; }" in _CSS
