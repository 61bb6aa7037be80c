"""Guided exercises in a real browser (issue 20, point 5): one instruction at a time, the
breathing pacer and its reduced-motion count, the end signal, the screen kept on, spoken
guidance in the page's language, a recording where the content has one, and every step as a
list without JavaScript. Time runs on Playwright's clock, moved on by the test.

The app serves a copy of the real content with one generated recording added (the body
scan in Dutch, a short WAV tone): no recording ships yet, this proves the path from
``content/audio/`` through the package to the page."""

from __future__ import annotations

import dataclasses
import io
import math
import shutil
import struct
import wave

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from fhir_burnout.workflow import enrol

from .conftest import PHONE, ROOT, WCAG22, accessible, home_url, serving

DESKTOP = {"width": 1280, "height": 900}

# Records what the page asks of the device, and lets each call through to the browser's own
# API: vibrate, speechSynthesis.speak, the wake lock and the tones of the end signal.
# Nothing is stubbed: headless Chromium has all four, and grants the wake lock.
OBSERVE = """
window.__seen = {vibrate: [], speak: [], wake: [], tones: 0};
const vibrate = navigator.vibrate ? navigator.vibrate.bind(navigator) : () => true;
navigator.vibrate = (pattern) => { window.__seen.vibrate.push(pattern); return vibrate(pattern); };
if (window.speechSynthesis) {
  const speak = speechSynthesis.speak.bind(speechSynthesis);
  speechSynthesis.speak = (u) => {
    window.__seen.speak.push({text: u.text, lang: u.lang});
    speak(u);
  };
}
if (navigator.wakeLock) {
  const request = navigator.wakeLock.request.bind(navigator.wakeLock);
  navigator.wakeLock.request = (type) => {
    window.__seen.wake.push(type);
    return request(type).then((held) => { window.__seen.lock = held; return held; });
  };
}
const oscillator = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () {
  window.__seen.tones += 1;
  return oscillator.call(this);
};
"""


def tone_wav() -> bytes:
    """Half a second of a soft 440 Hz tone, 8 kHz mono: a recording small enough to commit
    nowhere, made for the test."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(3000 * math.sin(2 * math.pi * 440 * n / 8000)))
                for n in range(4000)
            )
        )
    return out.getvalue()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A copy of the programme whose body scan has a Dutch recording."""
    root = tmp_path_factory.mktemp("content-with-audio")
    shutil.copytree(ROOT / "content", root / "content")
    shutil.copytree(ROOT / "questionnaires", root / "questionnaires")
    (root / "content" / "audio").mkdir()
    (root / "content" / "audio" / "body-scan.nl.wav").write_bytes(tone_wav())
    for lang in ("nl", "en"):
        path = root / "content" / lang / "body-signals.md"
        text = path.read_text(encoding="utf-8")
        text = text.replace(
            "    timed: true\n", "    timed: true\n    audio: {nl: body-scan.nl.wav}\n", 1
        )
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def guided(tmp_path_factory, recorded):
    def configure(settings):
        return dataclasses.replace(settings, content_root=recorded)

    with serving(tmp_path_factory, "guided", configure) as running:
        yield running


def browser_page(browser, viewport=PHONE, **options):
    context = browser.new_context(locale="nl-NL", viewport=viewport, bypass_csp=True, **options)
    context.add_init_script(OBSERVE)
    return context.new_page()


def open_exercise(live, page, patient, module, number, *, clock=True):
    """Enrol ``patient``, launch as them and open exercise ``number`` of ``module``."""
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, state["definitions"], fhir_base=live.info.fhir_base, patient=patient,
            track="waiting-list", author="Practitioner/prac-1",
        )  # fmt: skip
        key = next(t.key for t in enrolment.tasks if t.action_id == module)
    if clock:
        page.clock.install()  # the page's timers and frames on a clock the test moves on
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient={patient}")
    page.wait_for_url(home_url(live.app_url))
    page.goto(f"{live.app_url}/task/{key}/exercise/{number}")
    if clock:  # time stands still but for the test's run_for: no drift from slow steps
        page.clock.pause_at(page.evaluate("Date.now()") + 1_000)
    return key


def circle_width(page) -> float:
    return page.locator(".guide-circle").bounding_box()["width"]


def seen(page, what):
    return page.evaluate(f"window.__seen.{what}")


def test_the_breathing_exercise_guides_step_by_step_with_a_pacer_and_ends_gently(guided, browser):
    page = browser_page(browser)
    open_exercise(guided, page, "pat-01", "tension-relaxation", 1)
    expect(page.get_by_role("heading", level=1)).to_have_text("Rustig ademen")
    expect(page.get_by_role("heading", level=2, name="Begeleid oefenen")).to_be_visible()
    step = page.locator(".guide-step-text")
    expect(page.locator(".guide-step-number")).to_have_text("Stap 1 van 4")
    expect(step).to_contain_text("Ga gemakkelijk zitten")
    expect(page.get_by_role("timer")).to_have_text("5:00")
    assert not page.locator(".guide-steps").is_visible()  # one at a time, not the list
    start = page.get_by_role("button", name="Start de oefening")
    box = start.bounding_box()
    assert box["height"] >= 44 and box["width"] >= 44
    start.click()
    expect(page.locator(".timer-status")).to_have_text("De oefening loopt.")
    assert seen(page, "wake") == ["screen"]  # the screen kept on while it runs
    page.wait_for_function("window.__seen.lock && !window.__seen.lock.released")

    page.clock.run_for(20_000)
    expect(page.locator(".guide-step-number")).to_have_text("Stap 2 van 4")
    expect(step).to_contain_text("Leg één hand op je buik")
    assert not page.locator(".guide-pacer").is_visible()  # no pacer before the paced step
    page.clock.run_for(20_000)
    expect(step).to_contain_text("Adem mee met de cirkel")
    breath = page.locator(".guide-breath")
    # 4 seconds in: the circle grows; 6 seconds out: it shrinks.
    page.clock.run_for(1_000)
    expect(breath).to_have_text("Adem in")
    early_in = circle_width(page)
    page.clock.run_for(2_500)
    late_in = circle_width(page)
    assert late_in > early_in * 1.3
    page.clock.run_for(3_000)
    expect(breath).to_have_text("Adem uit")
    mid_out = circle_width(page)
    page.clock.run_for(3_000)
    late_out = circle_width(page)
    assert late_in > mid_out > late_out
    page.clock.resume()  # axe-core waits on timers of its own
    accessible(page, "exercise", tags=WCAG22, screenshot="exercise-phone.png")
    page.get_by_role("button", name="Pauze").click()
    expect(page.locator(".timer-status")).to_have_text("De oefening staat op pauze.")
    page.wait_for_function("window.__seen.lock.released")  # paused: the screen may sleep
    paused_at = page.get_by_role("timer").inner_text()
    page.clock.run_for(60_000)  # paused: the time stands still
    assert page.get_by_role("timer").inner_text() == paused_at
    page.get_by_role("button", name="Verder").click()

    assert seen(page, "vibrate") == [] and seen(page, "tones") == 0
    page.clock.fast_forward(260_000)
    page.clock.run_for(1_000)
    expect(page.locator(".timer-status")).to_contain_text("Klaar. Rustig aan.")
    expect(page.get_by_role("timer")).to_have_text("0:00")
    assert seen(page, "vibrate") == [[200, 100, 200]]
    assert seen(page, "tones") == 2  # the soft two-tone sound
    expect(page.locator("[data-guide]")).to_have_attribute("data-ended", "sound")
    expect(page.get_by_role("button", name="Opnieuw")).to_be_visible()
    page.context.close()


def test_with_reduced_motion_the_pacer_counts_in_words_and_nothing_moves(guided, browser):
    page = browser_page(browser, DESKTOP, reduced_motion="reduce")
    open_exercise(guided, page, "pat-02", "tension-relaxation", 1)
    page.get_by_label("Zacht geluid als de oefening klaar is").uncheck()  # the client's choice
    page.get_by_role("button", name="Start de oefening").click()
    page.clock.run_for(40_000 + 500)
    breath = page.locator(".guide-breath")
    expect(breath).to_have_text("Adem in\u2026 4")
    page.clock.run_for(2_000)
    expect(breath).to_have_text("Adem in\u2026 4, 3, 2")
    page.clock.run_for(2_000)
    expect(breath).to_have_text("Adem uit\u2026 6")
    assert not page.locator(".guide-pacer").is_visible()
    transform = page.locator(".guide-circle").evaluate("c => c.style.transform")
    assert transform == ""  # never animated
    page.clock.resume()  # axe-core waits on timers of its own
    accessible(page, "exercise-reduced", tags=WCAG22, screenshot="exercise-desktop.png")
    page.clock.fast_forward(300_000)
    page.clock.run_for(1_000)
    expect(page.locator(".timer-status")).to_contain_text("Klaar. Rustig aan.")
    assert seen(page, "tones") == 0 and seen(page, "vibrate") == [[200, 100, 200]]
    expect(page.locator("[data-guide]")).to_have_attribute("data-ended", "quiet")
    page.context.close()


def test_spoken_guidance_is_off_until_the_client_turns_it_on_and_speaks_dutch(guided, browser):
    page = browser_page(browser)
    open_exercise(guided, page, "pat-03", "tension-relaxation", 2)  # muscle relaxation
    speech = page.get_by_label("Lees de stappen hardop voor")
    expect(speech).not_to_be_checked()
    page.get_by_role("button", name="Start de oefening").click()
    page.clock.run_for(60_000)
    expect(page.locator(".guide-step-number")).to_have_text("Stap 2 van 12")
    assert seen(page, "speak") == []
    speech.check()
    spoken = seen(page, "speak")
    assert [s["lang"] for s in spoken] == ["nl-NL"]
    assert spoken[0]["text"].startswith("Zo gaat het bij elke spiergroep")
    page.clock.run_for(60_000)
    assert seen(page, "speak")[-1]["text"].startswith("Handen en onderarmen")
    page.get_by_role("button", name="Stoppen").click()
    expect(page.locator(".timer-status")).to_have_text(
        "Gestopt. Je kunt opnieuw beginnen wanneer je wilt."
    )
    expect(page.get_by_role("timer")).to_have_text("15:00")
    page.context.close()


def test_a_recording_in_the_content_is_offered_and_served_from_the_package(guided, browser):
    page = browser_page(browser)
    key = open_exercise(guided, page, "pat-04", "body-signals", 1)
    # The recording takes the place of the device's voice; the body scan has no pacer.
    recording = page.get_by_label("Speel de ingesproken begeleiding af")
    expect(recording).to_be_visible()
    assert page.locator(".guide-pacer").count() == 0
    url = page.locator("audio.guide-audio").get_attribute("src")
    assert url == f"/task/{key}/exercise/1/audio"
    answer = page.request.get(f"{guided.app_url}{url}")
    assert answer.ok and answer.headers["content-type"] == "audio/wav"
    assert answer.body() == tone_wav()
    # Only in the language it was recorded in: in English the device's voice reads.
    page.get_by_role("button", name="English").click()
    expect(page.get_by_label("Read the steps aloud")).to_be_visible()
    assert page.locator("audio").count() == 0
    assert page.request.get(f"{guided.app_url}{url}").status == 404
    page.context.close()


@pytest.mark.parametrize("scripts", ["off", "failing"])
def test_without_javascript_the_steps_show_once_and_no_guided_controls(guided, browser, scripts):
    """With scripts off, or guided.js failing to load, the exercise's own text gives the
    steps, once; what only the script can run (the guided mode's steps one at a time, its
    buttons and options) does not show. The duration and the recording (the browser's own
    player) stay."""
    context = browser.new_context(
        locale="nl-NL", viewport=PHONE, java_script_enabled=scripts == "failing",
        bypass_csp=True,
    )  # fmt: skip
    page = context.new_page()
    if scripts == "failing":
        page.route(lambda url: "/guided.js" in url, lambda route: route.abort())
    open_exercise(guided, page, f"pat-0{5 + (scripts == 'failing')}", "body-signals", 1,
                  clock=False)  # fmt: skip
    main = page.locator("main")
    # The steps once: the text's own numbered list (11 steps), not also the guide's 10.
    steps = main.locator("ol > li:visible")
    expect(steps).to_have_count(11)
    expect(steps.first).to_contain_text("Zoek een rustige plek")
    expect(
        main.get_by_text("Voel waar je lichaam de stoel, de bank of het bed raakt.")
    ).to_be_hidden()
    expect(page.locator(".guide-duration")).to_have_text(
        "Deze oefening duurt ongeveer 10 minuten."
    )
    # Nothing to press or tick that would do nothing; no heading promising a guided mode.
    expect(main.get_by_role("heading", name="Begeleid oefenen")).to_have_count(0)
    expect(main.get_by_role("button", name="Start de oefening")).to_have_count(0)
    expect(main.get_by_role("checkbox")).to_have_count(0)
    expect(page.locator("audio.guide-audio")).to_be_visible()  # the browser's own player
    expect(main.get_by_role("button")).to_have_text(["Bewaren"])  # the look back only
    if scripts == "failing":  # axe-core itself needs scripts
        accessible(page, "exercise-script-failed", WCAG22,
                   screenshot="exercise-script-failed-phone.png")  # fmt: skip
    else:
        page.screenshot(path=str(ROOT / "dist" / "screenshots" / "exercise-no-js-phone.png"),
                        full_page=True)  # fmt: skip
    context.close()
