"""Try a call from the browser, in headless Chromium with a fake microphone.

The microphone plays a WAV the test makes from the simulator's voice (a spoken burst, then
silence, looped by Chromium); the page sends it to the server as a phone line would, through a
ticket the page was issued; the simulated agent answers. The agent's transcript must appear on
the page and its audio frames reach it and play, and the call must be stored like any other.
"""

from __future__ import annotations

import shutil
import tempfile
import wave
from pathlib import Path
from typing import Any

import trio

from llc.kit.sim.audio import ULAW_TO_LINEAR, silence, speech_like
from llc.web.try_call import CALL_PREFIX
from tests.helpers.browser import WAIT_S, require_chromium, shot, start_browser
from tests.helpers.stack import StackFactory

require_chromium()

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

REPLY = "Hello from the simulator. What can I do for you?"


def microphone_wav(path: Path) -> Path:
    """1.2 s of the simulator's voice, then 3 s of silence: a turn the VAD can end, every loop."""
    ulaw = speech_like(1200, seed=3) + silence(3000)
    pcm = b"".join(ULAW_TO_LINEAR[b].to_bytes(2, "little", signed=True) for b in ulaw)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm)
    return path


async def test_a_call_from_the_browser_reaches_the_agent_and_plays_its_reply(start_stack: StackFactory,
                                                                            tmp_path: Path) -> None:
    stack = await start_stack(replies=[REPLY] * 4, user_transcripts=["Hi, is this working?"] * 4)
    assert stack.state.settings.stream_admission  # the page's socket is admitted by its ticket
    wav = microphone_wav(tmp_path / "mic.wav")
    profile = tempfile.mkdtemp(prefix="llc-chromium-")
    driver = await trio.to_thread.run_sync(
        lambda: start_browser(profile, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                              f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required"))
    try:
        def talk() -> dict[str, Any]:
            driver.get(stack.admin_url + "/console/try/")
            driver.find_element(By.ID, "start").click()
            WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, "#try-transcript .line.agent"))
            # Enough of the reply to hear it: frames in, and the marks answered as they played.
            WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(
                lambda d: d.execute_script("return window.llcTry.marksAnswered") >= 2)
            shot(driver, "console-try.png", tmp_path)
            during = dict(driver.execute_script("return window.llcTry"))
            driver.find_element(By.ID, "hangup").click()
            WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(
                lambda d: "The call ended" in d.find_element(By.ID, "status").text)
            return {**during, "agent": [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#try-transcript .line.agent")],
                    "status": driver.find_element(By.ID, "status").text}

        page = await trio.to_thread.run_sync(talk)
    finally:
        await trio.to_thread.run_sync(driver.quit)
        shutil.rmtree(profile, ignore_errors=True)
    assert page["callSid"].startswith(CALL_PREFIX) and page["framesOut"] > 50, page
    assert page["framesIn"] > 10 and any(REPLY in line for line in page["agent"]), page
    assert "caller_hangup" in page["status"]
    record = await stack.wait_stored(page["callSid"])
    assert record["direction"] == "browser" and record["end_reason"] == "caller_hangup"
    assert record["frames_from_twilio"] > 50 and record["frames_to_twilio"] >= page["framesIn"]
    assert any(line["role"] == "agent" and line["text"] == REPLY for line in record["transcript"])
