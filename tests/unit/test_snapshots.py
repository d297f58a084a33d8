"""`llc snapshot save/list/diff/restore`: a round trip, and a broken snapshot that is refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from llc.cli import main
from llc.config import Settings
from llc.ops import snapshots
from llc.profile import ProfileError, parse_profile

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
    assert [line.split()[0] for line in listing] == [first.name, second.name]
    assert all("= live profile" in line for line in listing)

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
    assert "llc restart" in capsys.readouterr().out


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
