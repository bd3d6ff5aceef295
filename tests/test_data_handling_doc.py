"""docs/data-handling.md is the map from each data promise to the tests that prove it: every test it names must
exist, every promise row must name at least one, and at least ten mutation tests must be listed."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "data-handling.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def test_every_test_the_document_names_exists() -> None:
    text = DOC.read_text()
    references = REFERENCE.findall(text)
    assert len(references) >= 40
    missing = [f"{path}::{name}" for path, name in references
               if not (ROOT / path).is_file()
               or not re.search(rf"^(async )?def {name}\(", (ROOT / path).read_text(), re.MULTILINE)]
    assert not missing, f"docs/data-handling.md names tests that do not exist: {missing}"


def test_every_promise_row_names_a_test() -> None:
    table = section(DOC.read_text(), "Promises and their proofs")
    rows = [line for line in table.splitlines() if re.match(r"\| [LS]\d+ \|", line)]
    promises = {f"L{i}" for i in range(1, 16)} | {f"S{i}" for i in range(1, 6)}
    assert {row.split("|")[1].strip() for row in rows} >= promises
    for row in rows:
        quoted, proved_by = row.split("|")[2], row.split("|")[4]
        assert quoted.strip(), row
        assert REFERENCE.search(proved_by), f"no test named for: {row[:80]}"
    assert "@@" not in DOC.read_text()


def test_at_least_ten_mutation_tests_are_listed() -> None:
    listed = [line for line in section(DOC.read_text(), "Mutations the suite catches").splitlines()
              if line.startswith("- ") and REFERENCE.search(line)]
    assert len(listed) >= 10, listed
