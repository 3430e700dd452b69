"""A protocol rendered for the information-governance board (issue 16): pure."""

from __future__ import annotations

from datetime import date

from services.core.config.settings import REPO_ROOT
from services.protocols.document import (
    DocumentContext,
    describe_rule,
    render_html,
    render_markdown,
)
from services.protocols.protocol import FieldRule, load_protocol

POLICE = REPO_ROOT / "deploy" / "hertfordshire" / "protocols" / "police-district.yaml"


def test_each_transform_is_described_in_words_from_its_parameters() -> None:
    assert describe_rule(FieldRule(transform="drop")) == "never leaves the hub"
    assert describe_rule(FieldRule.model_validate({"transform": "time", "to": "day"})) == \
        "coarsened to its day (UTC)"
    assert "250 m grid" in describe_rule(FieldRule.model_validate(
        {"transform": "location", "to": "grid", "metres": 250}))
    assert "outward code" in describe_rule(FieldRule.model_validate(
        {"transform": "postcode", "to": "outward"}))
    assert "victim_dob" in describe_rule(FieldRule.model_validate(
        {"transform": "pseudonymise", "with": ["victim_dob"]}))


def test_markdown_lists_parties_dates_every_field_and_missing_signatures() -> None:
    p = load_protocol(POLICE)
    md = render_markdown(p, DocumentContext(names={"herts-police": "Herts Police"},
                                            today=date(2027, 6, 1)))
    assert "- Herts Police (herts-police)" in md
    assert "Review by 2027-06-30 (29 days from 2027-06-01)" in md
    assert f"Data kept for {p.retention_days} days" in md
    assert "| district_hint |  | (not named) |" in md  # the allow-list, made visible
    assert md.count("NOT SIGNED") == len(p.parties)  # the file in the repo is unsigned


def test_html_escapes_what_the_document_says() -> None:
    p = load_protocol(POLICE).model_copy(update={"purpose": "<script>alert(1)</script>"})
    page = render_html(p)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
