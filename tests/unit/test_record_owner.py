"""One writer of a call's record: the core's journal. Every other layer hands values to the call.

Checked in the source itself: no product module but ``llc/core/journal.py`` assigns to a record's
field or grows one of its lists (``record.x = ...``, ``rec.turns.append(...)``). The store keeps
the records it loads as plain dicts, and the simulators keep their own; neither is a CallRecord.
"""

from __future__ import annotations

import ast
from pathlib import Path

LLC = Path(__file__).resolve().parents[2] / "llc"
RECORD_NAMES = {"record", "rec"}
GROWERS = {"append", "extend", "insert", "pop", "clear", "update", "remove", "__setitem__"}


def _names(node: ast.expr) -> list[str]:
    """The dotted chain of an expression: ``self.core.record.turns`` -> [self, core, record, turns]."""
    out: list[str] = []
    while isinstance(node, ast.Attribute):
        out.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        out.append(node.id)
    return out[::-1]


def _writes(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in GROWERS:
            targets = [node.func.value]
        for target in targets:
            for t in target.elts if isinstance(target, ast.Tuple) else [target]:
                chain = _names(t.value if isinstance(t, ast.Subscript) else t)
                # a field of a record: the record's name is in the chain, and not last (that is the record itself)
                if any(name in RECORD_NAMES for name in chain[:-1]) or (isinstance(node, ast.Call) and chain
                                                                         and chain[-1] in RECORD_NAMES):
                    found.append((node.lineno, ast.unparse(node)[:80]))
    return found


def test_only_the_core_writes_a_call_record() -> None:
    writes = {}
    for path in LLC.rglob("*.py"):
        part = path.relative_to(LLC).parts
        if part[0] in ("kit", "store") or part == ("core", "journal.py"):
            continue
        if found := _writes(ast.parse(path.read_text())):
            writes[str(path.relative_to(LLC))] = found
    assert writes == {}, f"the record is written outside the core's journal: {writes}"


def test_the_check_sees_a_write() -> None:
    code = "def f(bridge, rec):\n    bridge.record.answered_by = 'human'\n    rec.turns.append(1)\n    x.y = 2\n"
    assert [line for line, _ in _writes(ast.parse(code))] == [2, 3]


def test_key_presses_keep_the_newest_and_count_all() -> None:
    from llc.call.record_writer import progress_key
    from llc.core.journal import Journal
    from llc.core.record import KEPT_ENTRIES, CallRecord

    record = CallRecord(call_sid="CA1")
    journal = Journal(record, t0=0.0)
    keys = []
    for i in range(KEPT_ENTRIES + 50):
        key = progress_key(record)
        journal.key_pressed("0123456789*#"[i % 12], float(i))
        assert progress_key(record) != key  # a press past the kept ones is still news for the store
        keys.append("0123456789*#"[i % 12])
    assert record.dtmf_total == KEPT_ENTRIES + 50
    assert record.dtmf == keys[-KEPT_ENTRIES:] and record.dtmf_at[0] == 50.0 and len(record.dtmf_at) == KEPT_ENTRIES
