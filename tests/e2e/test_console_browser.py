"""The call console in a real browser: Debian's headless Chromium driven by Selenium through
chromedriver (the `chromium` and `chromium-driver` packages, installed by .ci/run; no browser
download). Runs in CI: a missing browser fails there instead of skipping.

After a simulated call with a barge-in (the reply's transcript reaching llc before the barge-in,
as with the real service), it opens the list, opens the call, checks the transcript shows the
interruption and the latency waterfall renders, then sees a second call appear while the page
stays open (no reload). Screenshots of both pages go to tmp, or to $LLC_CONSOLE_SCREENSHOTS
(how docs/console-*.png were made).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import trio

from llc.kit.sim.fake_caller import CallerScript, CallerTurn, FakeCaller
from tests.helpers.browser import WAIT_S, require_chromium, shot, start_browser
from tests.helpers.stack import StackFactory

LONG = "Our opening hours are nine to five on weekdays, ten to two on Saturdays, and we are closed on Sundays and bank holidays."
require_chromium()

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


async def test_console_list_call_page_and_a_new_call_appearing_live(start_stack: StackFactory, tmp_path: Path) -> None:
    stack = await start_stack(replies=[LONG, "Sure, go ahead.", "Hello, how can I help?"],
                              user_transcripts=["Hours?", "Wait, sorry", "Hi there"], realtime_factor=20.0,
                              settings={"record_audio": True, "recordings_dir": str(tmp_path / "rec")})
    script = CallerScript(turns=[CallerTurn("Hours?"), CallerTurn("Wait, sorry", barge_in_after_ms=1000)], max_call_s=20)
    first = await FakeCaller(stack.base_url, script).run()
    await stack.wait_records(1)
    with trio.fail_after(5):
        while await stack.state.store.get_call(first.call_sid) is None:
            await trio.sleep(0.02)
    recordings = stack.state.deps.recordings
    assert recordings is not None and await trio.to_thread.run_sync(recordings.drain, 10.0)
    console = stack.admin_url + "/console/"  # the admin listener, never the public port
    profile = tempfile.mkdtemp(prefix="llc-chromium-")
    driver = await trio.to_thread.run_sync(start_browser, profile)
    try:
        def list_then_call() -> dict[str, Any]:
            driver.get(console)
            row = WebDriverWait(driver, WAIT_S).until(
                lambda d: d.find_element(By.CSS_SELECTOR, f'#calls tr[data-sid="{first.call_sid}"]'))
            row.find_element(By.TAG_NAME, "a").click()
            WebDriverWait(driver, WAIT_S).until(lambda d: first.call_sid in d.title)
            cut = driver.find_element(By.CSS_SELECTOR, ".line.agent.interrupted")
            segments = driver.find_elements(By.CSS_SELECTOR, "#waterfall .wf-row .wf-seg")
            shot(driver, "console-call.png", tmp_path)
            page = {"cut": cut.text, "unheard": cut.find_element(By.CSS_SELECTOR, ".unheard").text,
                    "widths": [s.size["width"] for s in segments],
                    "parts": sorted({s.get_attribute("class") for s in segments}),
                    "totals": [t.text for t in driver.find_elements(By.CSS_SELECTOR, "#waterfall .wf-total")]}
            audio_src = driver.find_element(By.CSS_SELECTOR, "audio").get_attribute("src")
            wav = driver.execute_script(
                "return fetch(arguments[0]).then(r => r.arrayBuffer()).then(b => new TextDecoder().decode(b.slice(0, 4)));",
                audio_src)
            driver.get(console + "?direction=outbound")  # a filter that leaves the inbound call out
            filtered = driver.find_elements(By.CSS_SELECTOR, f'#calls tr[data-sid="{first.call_sid}"]')
            return {**page, "wav": wav, "filtered_out": not filtered}

        page = await trio.to_thread.run_sync(list_then_call)
        assert "interrupted: heard" in page["cut"] and "heard text estimated" in page["cut"]
        assert page["unheard"] and page["unheard"] in LONG  # the part never heard, shown struck out
        assert page["wav"] == "RIFF" and page["filtered_out"]  # the recording plays from the page
        assert page["parts"] == ["wf-seg model", "wf-seg relay", "wf-seg vad"]
        stored = await stack.state.store.get_call(first.call_sid)
        assert stored is not None  # the page's numbers are the record's voice-to-voice, one definition
        shown = [float(t.removesuffix(" ms")) for t in page["totals"]]
        recorded = [t["voice_to_voice_ms"] for t in stored["turns"] if t["ms"] is not None]
        assert len(shown) == len(recorded) >= 2 and all(abs(a - b) <= 0.5 for a, b in zip(shown, recorded)), (shown, recorded)
        assert len(page["widths"]) >= 6 and max(page["widths"]) > 50  # two turns, three parts each, drawn

        # Back to the list; mark the page so a reload would show, then place a second call.
        def open_list() -> None:
            driver.get(console)
            WebDriverWait(driver, WAIT_S).until(lambda d: d.find_element(By.ID, "live-table"))
            driver.execute_script("window.llcNotReloaded = true;")

        await trio.to_thread.run_sync(open_list)
        second = FakeCaller(stack.base_url, CallerScript(turns=[CallerTurn("Hi there")], max_call_s=15))
        seen: dict[str, bool] = {}

        def watch_second() -> None:
            def row(table: str) -> str | None:
                sid = second.call_sid
                found = driver.find_elements(By.CSS_SELECTOR, f'{table} tr[data-sid="{sid}"]') if sid else []
                return found[0].text if found else None

            WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(lambda d: row("#live-table") is not None)
            seen["in_progress"] = True
            shot(driver, "console-list.png", tmp_path)  # one call in progress, one finished
            # Finished: in the stored list with its outcome (a call stored mid-way is brought up to date).
            WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(
                lambda d: (row("#calls") or "").endswith("caller_hangup") and row("#live-table") is None)
            seen["finished"] = True
            seen["not_reloaded"] = bool(driver.execute_script("return window.llcNotReloaded === true;"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, watch_second)
            await second.run()
        assert seen == {"in_progress": True, "finished": True, "not_reloaded": True}
    finally:
        await trio.to_thread.run_sync(driver.quit)
        shutil.rmtree(profile, ignore_errors=True)


async def test_console_is_admin_only_asks_for_the_token_off_loopback_and_answers_json_and_404(
        start_stack: StackFactory) -> None:
    from dataclasses import replace

    from llc.web.admin import create_admin_app
    from llc.web.app import create_app

    stack = await start_stack(settings={"api_token": "s3cret"})
    assert (await create_app(stack.state).test_client().get("/console/")).status_code == 404  # not public
    client = create_admin_app(stack.state).test_client()
    live = await client.get("/console/live.json")
    assert (await live.get_json())["active"] == []
    assert (await client.get("/console/calls/CAnope")).status_code == 404
    stack.state.settings = replace(stack.state.settings, admin_host="192.0.2.10")  # as if bound off loopback
    refused = await client.get("/console/")
    assert refused.status_code == 401 and "Bearer" in (await refused.get_data(as_text=True))
    allowed = await client.get("/console/", headers={"Authorization": "Bearer s3cret"})
    assert allowed.status_code == 200 and "In progress" in (await allowed.get_data(as_text=True))
