"""A newcomer's way from the demo to a first real call, scripted: the mistakes people make on the
way each get one line naming the variable and the fix, exit 2, and never a traceback.

The steps follow docs/going-live.md: the command, the guide's `.env` copied as is, real-shaped
credentials but paths that cannot be written, a voice name with a typo, then a configuration
that starts. The nginx part of the guide (its commands, as written) runs in tests/e2e/test_deploy_nginx_single.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_docs_examples import REAL, _env_blocks

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def llc_phone(*args: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The installed command, as a user types it, with only ``env`` (no inherited LLC_ settings)."""
    return subprocess.run([str(BIN / "llc-phone"), *args], env={"PATH": f"{BIN}:/usr/bin:/bin", **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False)


def problems(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines a refused start printed; asserts it was refused the way a person can act on."""
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "Traceback" not in out and "ExceptionGroup" not in out, out
    return re.findall(r"^  - (.+)$", out, re.MULTILINE) or [line for line in out.splitlines() if line.startswith("llc-phone:")]


def test_the_newcomers_first_mistakes_each_get_one_line_and_the_fix(tmp_path: Path) -> None:
    # The command is the package's name: no `llc` that would shadow LLVM's compiler on a bare PATH.
    assert (BIN / "llc-phone").exists() and not (BIN / "llc").exists()
    assert "serve" in llc_phone("--help", env={}, cwd=tmp_path).stdout
    assert subprocess.run([sys.executable, "-m", "llc", "--help"], capture_output=True, check=False).returncode == 0

    # The guide's .env, copied as is: each example credential refused by name, with where to find the real one.
    [guide_env] = _env_blocks(REPO / "docs" / "going-live.md")
    (tmp_path / ".env").write_text(guide_env)
    copied = problems(llc_phone("serve", env={}, cwd=tmp_path))
    assert sorted(p.split("=", 1)[0] for p in copied) == sorted(REAL), copied
    assert all("is still the example value from the docs: replace it with" in p for p in copied)

    # Real-shaped credentials, but the guide's relative log file (and the rest) where nothing can be written.
    (tmp_path / "blocker").write_text("a file, not a folder")
    real = {**REAL, "LLC_ENV_FILE": str(tmp_path / ".env")}
    paths = {"LLC_LOG_FILE": "blocker/llc-phone.jsonl", "LLC_PID_FILE": "blocker/llc.pid",
             "LLC_DB_URL": "blocker/llc.db", "LLC_RECORD_AUDIO": "on", "LLC_RECORDINGS_DIR": "blocker/rec"}
    unwritable = problems(llc_phone("serve", env={**real, **paths}, cwd=tmp_path))
    named = {p.split("=", 1)[0] for p in unwritable}
    assert named == {"LLC_LOG_FILE", "LLC_PID_FILE", "LLC_DB_URL", "LLC_RECORDINGS_DIR"}, unwritable
    assert all("is not a folder; set" in p and "to a path in a folder this user can write" in p for p in unwritable)

    # A public URL with a space in it, and an outbound number without its account.
    typo = {**real, "LLC_PUBLIC_URL": "https://voice example.com", "TWILIO_ACCOUNT_SID": ""}
    [url, account] = problems(llc_phone("serve", env=typo, cwd=tmp_path))
    assert url.startswith("LLC_PUBLIC_URL=") and "it contains a space" in url and "https://voice.example.com" in url
    assert account.startswith("TWILIO_FROM_NUMBER is set but TWILIO_ACCOUNT_SID is not")

    # With every value fixed, the same start gets past configuration: doctor reads it whole.
    doctor = llc_phone("doctor", env={**real, "LLC_PUBLIC_URL": "http://127.0.0.1:9"}, cwd=tmp_path)
    assert "Traceback" not in doctor.stdout + doctor.stderr and "configuration problems" not in doctor.stdout
    assert "public URL" in doctor.stdout, doctor.stdout
