"""Playout tracking and truncate math, as data."""

import pytest

from llc.core.playout import Playout, TruncatePoint


def feed(p: Playout, item: str, *ms: int) -> list[str]:
    return [p.on_audio(item, m * 8) for m in ms]


@pytest.mark.parametrize(
    "sent, played_marks, expected",
    [
        ((100, 100, 100), 0, TruncatePoint("a", 0)),  # nothing heard: delete
        ((100, 100, 100), 1, TruncatePoint("a", 100)),
        ((100, 100, 100), 2, TruncatePoint("a", 200)),
        ((100, 100, 100), 3, None),  # all heard: nothing to cut
        ((40, 60), 1, TruncatePoint("a", 40)),
    ],
)
def test_truncate_is_what_marks_confirmed(sent: tuple[int, ...], played_marks: int, expected: TruncatePoint | None) -> None:
    p = Playout()
    marks = feed(p, "a", *sent)
    for name in marks[:played_marks]:
        assert p.on_mark(name)
    assert p.on_clear() == expected


def test_truncate_never_beyond_received_bytes() -> None:
    p = Playout()
    marks = [p.on_audio("a", 803), p.on_audio("a", 5)]  # ragged chunks: 100.4 ms, then 0.6 ms
    p.on_mark(marks[0])
    # 808 bytes = 101 whole ms received; 100 heard. The cut is 100, inside the received audio.
    tp = p.on_clear()
    assert tp == TruncatePoint("a", 100)
    assert tp.audio_end_ms <= p.items["a"].received_bytes // 8


def test_all_heard_at_ms_precision_needs_no_cut() -> None:
    p = Playout()
    m = p.on_audio("a", 803)  # 100 whole ms and 3 stray bytes
    p.on_mark(m)
    assert p.on_clear() is None


def test_a_later_mark_confirms_earlier_ones() -> None:
    p = Playout()
    marks = feed(p, "a", 100, 100, 100)
    assert p.on_mark(marks[2])
    assert p.items["a"].played_ms == 300 and not p.speaking


def test_marks_returned_after_clear_are_not_played() -> None:
    p = Playout()
    marks = feed(p, "a", 100, 100, 100)
    p.on_mark(marks[0])
    assert p.on_clear() == TruncatePoint("a", 100)
    # Twilio now returns every pending mark at once: they mean "discarded", not "played".
    assert not p.on_mark(marks[1]) and not p.on_mark(marks[2])
    assert p.items["a"].played_ms == 100
    assert not p.speaking


def test_two_barge_ins_in_one_response() -> None:
    p = Playout()
    first = feed(p, "a", 100, 100)
    p.on_mark(first[0])
    assert p.on_clear() == TruncatePoint("a", 100)
    # The same item keeps streaming (interrupt_response off, cancel late): more audio, new marks.
    second = feed(p, "a", 100, 100)
    p.on_mark(first[1])  # stale, from before the clear
    p.on_mark(second[0])
    tp = p.on_clear()
    assert tp == TruncatePoint("a", 300) and tp.audio_end_ms <= p.items["a"].sent_ms


def test_items_are_tracked_separately() -> None:
    p = Playout()
    a = feed(p, "a", 100)
    feed(p, "b", 100)
    p.on_mark(a[0])
    assert p.played_all("a") and not p.played_all("b")
    assert p.on_clear() == TruncatePoint("b", 0)
