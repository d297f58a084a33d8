"""Playout tracking and truncate math, as data."""

import pytest

from llc.core.playout import Playout, TruncatePoint


def feed(p: Playout, item: str, *ms: int) -> list[str]:
    """Forward deltas of ``ms`` each; the marks sent after them (every delta marked here)."""
    marks = [p.on_audio(item, m * 8)[1] for m in ms]
    assert None not in marks
    return marks  # type: ignore[return-value]


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
    p = Playout(0)
    marks = feed(p, "a", *sent)
    for name in marks[:played_marks]:
        assert p.on_mark(name)
    assert p.on_clear() == expected


def test_truncate_never_beyond_received_bytes() -> None:
    p = Playout(0)
    marks = [p.on_audio("a", 803)[1], p.on_audio("a", 5)[1]]  # ragged chunks: 100.4 ms, then 0.6 ms
    p.on_mark(marks[0])
    # 808 bytes = 101 whole ms received; 100 heard. The cut is 100, inside the received audio.
    tp = p.on_clear()
    assert tp == TruncatePoint("a", 100)
    assert tp.audio_end_ms <= p.items["a"].received_bytes // 8


def test_all_heard_at_ms_precision_needs_no_cut() -> None:
    p = Playout(0)
    _, m = p.on_audio("a", 803)  # 100 whole ms and 3 stray bytes
    assert m is not None
    p.on_mark(m)
    assert p.on_clear() is None


def test_a_later_mark_confirms_earlier_ones() -> None:
    p = Playout(0)
    marks = feed(p, "a", 100, 100, 100)
    assert p.on_mark(marks[2])
    assert p.items["a"].played_ms == 300 and not p.speaking


def test_marks_returned_after_clear_are_not_played() -> None:
    p = Playout(0)
    marks = feed(p, "a", 100, 100, 100)
    p.on_mark(marks[0])
    assert p.on_clear() == TruncatePoint("a", 100)
    # Twilio now returns every pending mark at once: they mean "discarded", not "played".
    assert not p.on_mark(marks[1]) and not p.on_mark(marks[2])
    assert p.items["a"].played_ms == 100
    assert not p.speaking


def test_two_barge_ins_in_one_response() -> None:
    p = Playout(0)
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
    p = Playout(0)
    a = feed(p, "a", 100)
    feed(p, "b", 100)
    p.on_mark(a[0])
    assert p.played_all("a") and not p.played_all("b")
    assert p.on_clear() == TruncatePoint("b", 0)


def test_marks_follow_every_100_ms_of_small_deltas_and_the_item_end() -> None:
    p = Playout(100)
    after = [p.on_audio("a", 20 * 8)[1] for _ in range(12)]  # 12 deltas of 20 ms
    marked = [i for i, m in enumerate(after) if m is not None]
    assert marked == [4, 9]  # after 100 ms and 200 ms of audio
    assert p.speaking  # 40 ms went out unmarked: still talking
    tail = p.flush()
    assert tail is not None and p.flush() is None  # the tail is marked once
    p.on_mark(after[9])  # type: ignore[arg-type]
    assert not p.played_all("a") and p.on_clear() == TruncatePoint("a", 200)


def test_the_end_mark_confirms_the_whole_item() -> None:
    p = Playout(100)
    for _ in range(3):
        p.on_audio("a", 20 * 8)
    tail = p.flush()
    assert tail is not None and p.speaking
    assert p.on_mark(tail)
    assert p.played_all("a") and not p.speaking and p.on_clear() is None


def test_a_new_item_marks_the_previous_items_tail_before_its_audio() -> None:
    p = Playout(100)
    assert p.on_audio("a", 60 * 8) == (None, None)
    before, after = p.on_audio("b", 120 * 8)
    assert before is not None and after is not None
    p.on_mark(before)
    assert p.played_all("a") and not p.played_all("b")


def test_clear_drops_the_unmarked_tail_too() -> None:
    p = Playout(100)
    p.on_audio("a", 40 * 8)
    assert p.speaking
    assert p.on_clear() == TruncatePoint("a", 0)
    assert not p.speaking and p.flush() is None


def test_bogus_marks_confirm_nothing_however_many_are_pending() -> None:
    """A forged leg flooding marks that were never sent: each is told apart by name at once
    (not by a scan of every pending mark), and the real ones still confirm in order."""
    p = Playout(0)
    marks = feed(p, "a", *([20] * 2000))  # 40 s of audio queued, 2000 marks pending
    for n in range(5000):
        assert not p.on_mark(f"forged{n}")
    assert not p.on_mark("m999999")  # a name of our shape, never sent
    assert p.speaking and p.items["a"].played_ms == 0
    assert p.on_mark(marks[999])
    assert p.items["a"].played_ms == 20_000 and p.speaking
    assert not p.on_mark(marks[500])  # already confirmed by a later one
    assert p.on_mark(marks[-1]) and not p.speaking
