"""The playout clock: the truncate is what the caller heard by time, not only by marks."""

from pytest import approx

from llc.core.playout import Playout

MS = 8  # bytes per ms


def test_the_cut_follows_the_clock_between_marks() -> None:
    pl = Playout(mark_every_ms=100)
    for _ in range(10):  # 1 s of audio sent at once, at t=0: Twilio plays it from t=0
        pl.on_audio("i1", 100 * MS, now=0.0)
    assert pl.play_end == approx(1.0)
    assert pl.heard_ms(at=0.25) == 250  # no mark echoed yet: marks alone would say 0
    cut = pl.on_clear(now=0.43)
    assert cut is not None and (cut.item_id, cut.audio_end_ms) == ("i1", 430)


def test_a_gap_in_the_audio_does_not_count_as_heard() -> None:
    pl = Playout()
    pl.on_audio("i1", 100 * MS, now=0.0)  # plays 0.0 .. 0.1
    assert pl.heard_ms(at=0.3) == 100
    pl.on_audio("i1", 100 * MS, now=0.5)  # the service paused: this plays 0.5 .. 0.6
    assert pl.play_end == approx(0.6)
    assert pl.heard_ms(at=0.55) == 150


def test_a_confirmed_mark_measures_the_round_trip() -> None:
    pl = Playout(mark_every_ms=100)
    _, mark = pl.on_audio("i1", 100 * MS, now=0.0)
    assert mark is not None
    pl.on_audio("i1", 900 * MS, now=0.0)
    assert pl.on_mark(mark, now=0.14)  # the clock said 0.10: a 40 ms round trip
    assert pl.trip_s == approx(0.04)
    # A clear sent at 0.5 reaches Twilio 20 ms late, as the audio did: the two cancel.
    assert pl.heard_ms(at=0.5) == 500
    # A stop that arrived at 0.5 left Twilio at 0.48, 460 ms into audio that began at 0.02.
    assert pl.heard_before(0.5) == 460
    assert pl.heard_ms(at=5.0) == 1000  # never more than was sent


def test_marks_still_bound_the_cut_from_below() -> None:
    pl = Playout(mark_every_ms=100)
    _, mark = pl.on_audio("i1", 100 * MS, now=0.0)
    pl.on_audio("i1", 100 * MS, now=0.0)
    assert mark is not None and pl.on_mark(mark, now=0.5)  # a slow echo: the clock lags a lot
    assert pl.heard_ms(at=0.05) == 100  # the mark confirmed 100 ms: never less


def test_without_the_time_the_cut_is_by_marks_as_before() -> None:
    pl = Playout(mark_every_ms=100)
    _, mark = pl.on_audio("i1", 100 * MS)
    pl.on_audio("i1", 50 * MS)
    assert pl.play_end is None and mark is not None and pl.on_mark(mark)
    cut = pl.on_clear()
    assert cut is not None and cut.audio_end_ms == 100


def test_everything_heard_by_the_clock_needs_no_truncate() -> None:
    pl = Playout()
    pl.on_audio("i1", 200 * MS, now=0.0)
    assert pl.on_clear(now=1.0) is None
    assert pl.play_end == 1.0  # the clear emptied Twilio's buffer


def test_one_late_echo_does_not_pull_later_cuts_short() -> None:
    pl = Playout(mark_every_ms=100)
    marks = []
    for _ in range(3):
        marks.append(pl.on_audio("i1", 100 * MS, now=0.0)[1])
    assert pl.on_mark(marks[0], now=0.12)  # clock: 0.10, a 20 ms round trip
    assert pl.on_mark(marks[1], now=0.60)  # clock: 0.20, held up 400 ms on the way back
    assert pl.trip_s == approx(0.02)


def test_a_new_sessions_audio_plays_after_what_the_old_one_left_queued() -> None:
    old = Playout(mark_every_ms=100)
    _, mark = old.on_audio("old", 100 * MS, now=0.0)
    old.on_audio("old", 900 * MS, now=0.0)  # 1 s queued at Twilio when the session is lost
    assert mark is not None and old.on_mark(mark, now=0.12)  # a 20 ms round trip
    new = old.successor(100)
    _, first = new.on_audio("new", 1000 * MS, now=0.5)  # plays from 1.0, after the old audio
    assert first is not None and first != mark  # names keep counting
    assert new.heard_ms(at=1.3) == 300  # it began at 1.0; a fresh clock would say 800


def test_the_tail_mark_of_an_item_is_stamped_where_its_audio_ends() -> None:
    pl = Playout(mark_every_ms=500)
    pl.on_audio("a", 300 * MS, now=0.0)  # under a mark's worth: no mark yet
    before, _ = pl.on_audio("b", 400 * MS, now=0.0)  # b starts: a's tail is marked before it
    assert before is not None
    assert pl.on_mark(before, now=0.34)  # a ended at 0.30 by the clock (not 0.70, where b ends)
    assert pl.trip_s == approx(0.04)


def test_a_clear_after_everything_played_keeps_it_as_heard() -> None:
    pl = Playout(mark_every_ms=500)
    pl.on_audio("i1", 400 * MS, now=1.0)
    assert pl.flush() is not None  # the item's tail mark, not echoed yet
    assert pl.speaking
    assert pl.on_clear(now=1.45) is None  # the clock: all 400 ms played by 1.40, nothing to cut
    assert pl.items["i1"].played_ms == 400 and pl.played_all("i1")
    assert not pl.speaking and pl.current is None
