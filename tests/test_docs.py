"""The documentation keeps up with the code: every study.toml key is documented in its section.

docs/study-toml.md has one `## [section]` heading per top-level section of study.toml, each
with a key table -- or a link to the page that documents the section instead ([stimuli] ->
stimuli.md, [page] -> templates.md). That page marks the section's part with a heading such as
`## [stimuli] keys` or a line such as `` `[page]`: ``, and nested sections (`[stimuli.synthetic]`,
`[page.texts]`) have parts of their own on the same page. A key counts as documented only when
it is in the first column of a table inside its own section's part: `seed` documented under
[study] says nothing about [design] seed.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from pydantic import BaseModel

from crowdkit.study import StudyConfig

DOCS = Path(__file__).resolve().parents[1] / "docs"
INDEX = "study-toml.md"

# Keys that are genuinely undocumented in their section today: each case is a strict xfail, so
# documenting the key turns it into a failure that asks for its removal from this list.
UNDOCUMENTED: set[str] = set()

# A part starts at a heading that begins with a section name ("## [stimuli] keys") or at a
# line that names the section alone ("`[page.texts]`: each key replaces ...").
HEADING = re.compile(r"^(#+)\s")
SECTION_HEADING = re.compile(r"^#+\s+`?\[([a-z_.]+)\]`?")
SECTION_LINE = re.compile(r"^`\[([a-z_.]+)\]`:")
TABLE_KEY = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")
LINK = re.compile(r"\]\(([\w-]+\.md)\)")


def sections(model: type[BaseModel], prefix: str = "") -> dict[str, list[str]]:
    """Section name ("stimuli.synthetic") -> its keys, for a model and its nested models."""
    out: dict[str, list[str]] = {}
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.update(sections(ann, f"{prefix}{name}."))
        else:
            out.setdefault(prefix.rstrip("."), []).append(name)
    return out


STUDY_SECTIONS = {s: keys for s, keys in sections(StudyConfig).items() if s}


@cache
def parts(page: str) -> dict[str, list[str]]:
    """Section name -> the lines of every part of `page` that belongs to that section.

    A part runs from its marker to the next heading or section marker, so the [stimuli] part
    of stimuli.md stops where `### [stimuli.synthetic]` begins.
    """
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in (DOCS / page).read_text(encoding="utf-8").splitlines():
        marker = SECTION_HEADING.match(line) or SECTION_LINE.match(line)
        if marker:
            current = out.setdefault(marker.group(1), [])
        elif HEADING.match(line):
            current = None
        elif current is not None:
            current.append(line)
    return out


def table_keys(lines: list[str]) -> set[str]:
    """The backticked names in the first column of the tables among `lines`."""
    keys: set[str] = set()
    for line in lines:
        if line.startswith("|") and not set(line) <= set("|-: "):
            keys.update(TABLE_KEY.findall(line.split("|")[1]))
    return keys


def page_of(section: str) -> str:
    """The page that documents `section`: study-toml.md, or the page its part links to.

    A nested section lives on its top-level section's page.
    """
    top = section.split(".")[0]
    index = parts(INDEX)
    assert top in index, f"docs/{INDEX} has no `## [{top}]` heading"
    if table_keys(index[top]):
        return INDEX
    links = sorted({m for line in index[top] for m in LINK.findall(line)})
    assert len(links) == 1, (f"docs/{INDEX} [{top}] has no key table and should link to the "
                             f"one page that documents it; links: {links}")
    return links[0]


def cases() -> list:
    out = []
    for section, keys in STUDY_SECTIONS.items():
        for key in keys:
            name = f"{section}.{key}"
            marks = [pytest.mark.xfail(strict=True, reason="undocumented in its section")
                     ] if name in UNDOCUMENTED else []
            out.append(pytest.param(section, key, id=name, marks=marks))
    return out


def test_the_study_sections_are_the_expected_ones():
    # the parametrisation below is only as good as the model walk that feeds it
    assert sorted(STUDY_SECTIONS) == [
        "compute", "design", "design.ratings", "hit", "mis", "mturk", "page", "page.texts",
        "participants", "qualifications", "quality", "review", "stimuli", "stimuli.synthetic",
        "storage", "study"]
    assert "seed" in STUDY_SECTIONS["design"] and "steps" in STUDY_SECTIONS["stimuli.synthetic"]


@pytest.mark.parametrize(("section", "key"), cases())
def test_every_study_toml_key_is_documented_in_its_section(section: str, key: str):
    page = page_of(section)
    part = parts(page).get(section)
    assert part is not None, f"docs/{page} has no part for [{section}]"
    documented = table_keys(part)
    assert key in documented, (
        f"study.toml [{section}] {key} is not in the [{section}] key table of docs/{page} "
        f"(it documents {sorted(documented)})")


def test_a_key_of_another_section_does_not_count():
    # [study] documents `seed` and `name`; neither makes [hit] or [design] documented
    assert "seed" in table_keys(parts(INDEX)["study"])
    assert "name" not in table_keys(parts(INDEX)["design"])
    assert "steps" not in table_keys(parts("stimuli.md")["stimuli"])
    assert "preview" not in table_keys(parts("templates.md")["page"])
