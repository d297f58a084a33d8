"""The test kit's own arithmetic as data: the load generator's framing, memory slope, soak checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from llc.kit.bench.capacity import slope
from llc.kit.bench.loadgen import FrameReader, encode_frame, read_stamp, read_tag, stamped_payload
from llc.kit.soak import SoakReport, _check


def test_loadgen_framing_round_trips_and_reassembles() -> None:
    reader = FrameReader()
    payload = b'{"payload":"%s"}' % stamped_payload(7)
    big = b"y" * 70_000
    stream = encode_frame(1, payload, client=True) + encode_frame(1, big, client=False)
    # Fed a byte at a time for the first frame: the parser waits for whole frames.
    got = [m for i in range(len(stream)) for m in reader.feed(stream[i : i + 1])]
    assert got == [(1, payload), (1, big)]
    stamp = read_stamp(payload, b'"payload":"')
    assert stamp is not None and stamp[1] == 7


def test_a_tagged_payload_keeps_its_stamp_and_names_its_caller() -> None:
    payload = b'{"audio":"%s"}' % stamped_payload(9, tag=123_456)
    stamp = read_stamp(payload, b'"audio":"')
    assert stamp is not None and stamp[1] == 9
    assert read_tag(payload, b'"audio":"') == 123_456
    assert len(stamped_payload(9, tag=1)) == len(stamped_payload(9))  # still a 160-byte frame


def test_slope_is_memory_per_call() -> None:
    assert slope([100, 200, 300], [50_000, 60_000, 70_000]) == pytest.approx(100)
    assert slope([100], [1]) == 0.0


def test_check_names_each_leak() -> None:
    report = SoakReport(
        samples=[{"t_s": 10, "active_calls": 5, "rss_kib": 100_000}, {"t_s": 20, "active_calls": 5, "rss_kib": 110_000}],
        idle_before={"fds": 10, "sockets": 6, "tasks": 12}, idle_after={"fds": 11, "sockets": 6, "tasks": 14})
    _check(report, 0.05)
    assert any(f.startswith("fds grew") for f in report.failures)
    assert any(f.startswith("tasks grew") for f in report.failures)
    assert any(f.startswith("RSS grew 10.0%") for f in report.failures)
    assert not any(f.startswith("sockets") for f in report.failures)


def test_rss_growth_is_measured_after_the_warm_up() -> None:
    # Windows filling in the first minutes, then flat: passes; then a steady climb: fails.
    warm = [60_000, 70_000, 71_000, 71_200, 71_400, 71_500, 71_600, 71_700, 71_800, 71_900]
    flat = SoakReport(samples=[{"t_s": 60 * i, "active_calls": 5, "rss_kib": r} for i, r in enumerate(warm)])
    _check(flat, 0.05)
    assert flat.failures == [] and "+1.3% after warm-up" in flat.rss_note
    leak = SoakReport(samples=[{"t_s": 60 * i, "active_calls": 5, "rss_kib": 70_000 + 1_000 * i} for i in range(10)])
    _check(leak, 0.05)
    assert leak.failures == ["RSS grew 9.7% after warm-up (tolerance 5%)"]


def test_simulator_clients_share_one_tls_context_per_ca_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Built once (a fresh one costs ~60 ms of CPU on the simulator's loop), yet a test that
    trusts its own CA through SSL_CERT_FILE gets a context that holds that CA."""
    from llc.kit.sim.client_tls import client_tls
    from tests.helpers.nginx import trusted_ca

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    default = client_tls()
    assert client_tls() is default
    trusted_ca(tmp_path, monkeypatch)
    own = client_tls()
    assert own is not default and client_tls() is own
    assert len(own.get_ca_certs()) == 1  # the test CA alone, as SSL_CERT_FILE says
