"""`llc-phone snapshot save/list/diff/restore`: a round trip, and a broken snapshot that is refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from llc.cli import main
from llc.config import Settings
from llc.ops import snapshots
from llc.profile import KNOWN_KEYS, ProfileError, live_profile_path, load_profile, parse_profile

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def deploy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A deployment directory: live profile from the bundled default, an empty snapshots/ dir."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLC_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("LLC_PROFILE", str(tmp_path / "live.toml"))
    monkeypatch.setenv("LLC_SNAPSHOT_DIR", str(tmp_path / "snaps"))
    (tmp_path / "live.toml").write_text(snapshots.bundled_default_text())
    return tmp_path


def test_round_trip(deploy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live = deploy / "live.toml"
    today = dt.date.today().isoformat()
    assert main(["snapshot", "save"]) == 0
    assert main(["snapshot", "save"]) == 0  # same day: a suffix, never an overwrite
    first, second = deploy / "snaps" / f"profile-TUNED-{today}.toml", deploy / "snaps" / f"profile-TUNED-{today}-2.toml"
    assert first.read_text() == second.read_text() == live.read_text()
    capsys.readouterr()

    assert main(["snapshot", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0] == f"live profile: {live}"
    assert [line.split()[0] for line in listing[1:]] == [first.name, second.name]
    assert all("<- live" in line for line in listing[1:])

    assert main(["snapshot", "diff"]) == 0
    tuned = live.read_text().replace('eagerness = "high"', 'eagerness = "low"')
    live.write_text(tuned)
    capsys.readouterr()
    assert main(["snapshot", "diff", first.name]) == 1
    out = capsys.readouterr().out
    assert '-eagerness = "high"' in out and '+eagerness = "low"' in out

    assert main(["snapshot", "restore", today]) == 0
    assert live.read_text() == first.read_text()
    backups = list((deploy / "snaps" / "backups").iterdir())
    assert len(backups) == 1 and backups[0].read_text() == tuned  # what it replaced is kept
    assert "llc-phone restart" in capsys.readouterr().out


def test_broken_snapshot_is_refused_and_nothing_replaced(deploy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live = deploy / "live.toml"
    before = live.read_text()
    (deploy / "snaps").mkdir()
    (deploy / "snaps" / "profile-TUNED-2026-01-01.toml").write_text('[turn_detection]\neagerness = "extreme"\n')
    (deploy / "snaps" / "profile-TUNED-2026-01-02.toml").write_text("voice = [unclosed\n")
    for name, reason in (("2026-01-01", "eagerness 'extreme' must be one of"), ("profile-TUNED-2026-01-02.toml", "not valid TOML")):
        assert main(["snapshot", "restore", name]) == 2
        err = capsys.readouterr().err
        assert "refusing to restore" in err and reason in err and "not changed" in err and "Traceback" not in err
    assert live.read_text() == before
    assert not (deploy / "snaps" / "backups").exists()
    assert main(["snapshot", "restore", "nope"]) == 2
    assert "no snapshot 'nope'" in capsys.readouterr().err


def test_save_refuses_a_broken_live_profile(deploy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (deploy / "live.toml").write_text('voice = 3\n')
    assert main(["snapshot", "save"]) == 2
    assert "'voice' must be a str" in capsys.readouterr().err
    assert not (deploy / "snaps").exists() or not any((deploy / "snaps").iterdir())


def test_unset_llc_profile_creates_profile_toml_from_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(snapshot_dir=str(tmp_path / "snaps"))
    target, live = snapshots.save(settings, dt.date(2026, 11, 25))
    assert not live.exists and (tmp_path / "profile.toml").read_text() == snapshots.bundled_default_text()
    assert target.name == "profile-TUNED-2026-11-25.toml"
    with pytest.raises(ProfileError, match="no snapshots"):
        snapshots.resolve(tmp_path / "empty", None)


def test_shipped_snapshot_is_known_good() -> None:
    shipped = sorted((REPO / "snapshots").glob("profile-TUNED-*.toml"))
    assert shipped, "ship at least one known-good snapshot"
    for path in shipped:
        profile = parse_profile(path.read_text(), str(path))
        assert profile.turn_detection.type == "semantic_vad" and profile.turn_detection.create_response


def test_shipped_snapshot_is_current() -> None:
    """The shipped known-good state has every table of today's profile, not an older shape."""
    for path in sorted((REPO / "snapshots").glob("profile-TUNED-*.toml")):
        text = path.read_text()
        for table in ("[turn_policy]", "[tools]", "[transfer]"):
            assert table in text, f"{path.name} lacks {table}"
        assert parse_profile(text, str(path)) == parse_profile(snapshots.bundled_default_text(), str(path))


def test_one_live_profile_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LLC_PROFILE, else ./profile.toml when present, else the bundled default: serve, doctor and
    snapshot all ask live_profile_path."""
    monkeypatch.chdir(tmp_path)
    settings = Settings(snapshot_dir=str(tmp_path / "snaps"))
    assert live_profile_path(None) is None and load_profile(live_profile_path(None)).source == "llc/profiles/default.toml"
    assert not snapshots.live_profile(settings).exists
    (tmp_path / "profile.toml").write_text('voice = "marin"\n')
    assert live_profile_path(None) == "profile.toml"
    assert load_profile(live_profile_path(None)).voice == "marin"  # what `llc-phone serve` runs
    assert snapshots.live_profile(settings).text == 'voice = "marin"\n'  # what `llc-phone snapshot` saves
    assert live_profile_path(str(tmp_path / "other.toml")) == str(tmp_path / "other.toml")


def test_list_names_the_bundled_default_and_restore_advice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLC_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.delenv("LLC_PROFILE", raising=False)
    monkeypatch.setenv("LLC_SNAPSHOT_DIR", str(REPO / "snapshots"))
    assert main(["snapshot", "list"]) == 0
    out = capsys.readouterr().out
    assert "live profile: the bundled default" in out and "<- live" in out  # the shipped snapshot is the default
    monkeypatch.setenv("LLC_SNAPSHOT_DIR", str(tmp_path / "snaps"))
    assert main(["snapshot", "save"]) == 0
    assert main(["snapshot", "restore", dt.date.today().isoformat()]) == 0
    out = capsys.readouterr().out
    assert "now the live profile" in out and "reads profile.toml from the folder it starts in" in out
    assert "llc-phone restart" in out


@pytest.mark.parametrize("text, key", [('vocie = ""\n', "'vocie'"), ('[turn_detecton]\ntype = "server_vad"\n', "'turn_detecton'"),
                                       ("[turn_policy]\nmark_evry_ms = 100\n", "'mark_evry_ms'")])
def test_unknown_profile_keys_are_errors_listing_the_known_ones(text: str, key: str) -> None:
    with pytest.raises(ProfileError) as err:
        parse_profile(text, "p.toml")
    assert f"unknown key(s) {key}" in str(err.value) and "known keys are" in str(err.value)
    table = "turn_policy" if "mark" in key else None
    assert ("mark_every_ms" if table else ", ".join(KNOWN_KEYS)) in str(err.value)
