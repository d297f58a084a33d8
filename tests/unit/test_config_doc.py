"""docs/configuration.md holds the table generated from the one definition, and names every variable."""

from __future__ import annotations

from llc.config import DOC_PATH, TABLE_END, TABLE_START, VARS, config_table_markdown
from llc.config_vars import REMOVED, RENAMED

REGENERATE = "regenerate it with: python -m llc.config --write"


def test_doc_table_is_the_generated_one() -> None:
    doc = DOC_PATH.read_text()
    assert doc.count(TABLE_START) == 1 and doc.count(TABLE_END) == 1, f"{DOC_PATH.name} lost its table markers"
    block = doc.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0]
    assert block == "\n" + config_table_markdown(), f"{DOC_PATH.name}'s table differs from llc/config_vars.py; {REGENERATE}"


def test_doc_names_every_variable_and_old_name() -> None:
    doc = DOC_PATH.read_text()
    missing = [v.env for v in VARS if f"`{v.env}`" not in doc]
    missing += [old for old in (*RENAMED, *REMOVED) if f"`{old}`" not in doc]
    assert not missing, f"{DOC_PATH.name} does not name {', '.join(missing)}; {REGENERATE}"


def test_every_variable_and_old_name_has_one_row() -> None:
    rows = [line.split("`")[1] for line in config_table_markdown().splitlines() if line.startswith("| `")]
    assert sorted(rows) == sorted([v.env for v in VARS] + [*RENAMED, *REMOVED])
