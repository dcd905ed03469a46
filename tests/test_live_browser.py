"""The live page in a real browser: headless Chromium whose fake microphone plays a synthetic talk
(looping) streams it to ``python -m zoo serve`` through the page's own AudioWorklet and WebSocket
code, and the labels the page shows must be those ``python -m zoo infer --segment vad`` gives for
the same file.

The model's class names are the AI Hub corpus's Korean ones (분노, 혐오, ...), so the page must
carry Hangul from the server to the screen.

Tolerance: the fake microphone starts somewhere in the file and loops, and the browser's audio
path (48 kHz capture, AudioContext at its own rate) may shift a VAD boundary by a window or two.
So the page's segments are matched to the file's by time modulo the file's length after the one
offset that aligns most of them: start and end within MATCH_TOLERANCE seconds. The utterances are
ones the model labels with a margin of at least 0.2, so a few ms of boundary cannot flip a label;
every matched segment must carry exactly the file's label.

Set ZOO_LIVE_SCREENSHOT=docs/live.png to write the page's screenshot there (the docs' image).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("silero_vad")
soundfile = pytest.importorskip("soundfile")
selenium = pytest.importorskip("selenium", reason="pip install selenium (the dev extra) to test the live page")

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and Path(p).is_file()), None)
DRIVER = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver") if p and Path(p).is_file()), None)
if CHROMIUM is None or DRIVER is None:
    pytest.skip("no Chromium or chromedriver here: apt-get install chromium chromium-driver fonts-noto-cjk "
                "to test the live page in a real browser", allow_module_level=True)

from live_server import Server, confident_utterances, join, synthetic_utterances  # noqa: E402

MATCH_TOLERANCE = 0.25  # seconds, start and end
RATE = 48000  # the fake microphone's file: the browser's usual capture rate
KOREAN = {"Angry": "분노", "Disgust": "혐오", "Fear": "공포", "Happiness": "행복", "Neutral": "중립",
          "Sadness": "슬픔", "Surprise": "놀람"}


@pytest.fixture(scope="module")
def predictor():
    import zoo

    p = zoo.load("audio-cnn-synth", device="cpu")
    p.module.class_names = [KOREAN[c] for c in p.module.class_names]  # the AI Hub corpus's labels
    return p


@pytest.fixture(scope="module")
def talk(predictor, tmp_path_factory):
    """A 48 kHz talk of two utterances with different, clearly predicted labels."""
    from zoo.data.audio import resample

    root = tmp_path_factory.mktemp("browser")
    utts = confident_utterances(predictor, synthetic_utterances(root / "synth"), 2)
    x = join([resample(w, sr, RATE) for w, sr in utts], RATE)
    wav = root / "talk.wav"
    soundfile.write(wav, x, RATE, subtype="PCM_16")
    return wav, len(x) / RATE


@pytest.fixture(scope="module")
def server(predictor):
    from zoo.live.protocol import Limits

    with Server(predictor, Limits(), name="audio-cnn-synth (한국어 labels)") as s:
        yield s


@pytest.fixture
def browser(talk):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-audio-capture={talk[0]}", "--autoplay-policy=no-user-gesture-required",
              "--window-size=1100,820", "--force-device-scale-factor=1"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def circular(a: float, b: float, period: float) -> float:
    d = (a - b) % period
    return min(d, period - d)


def match(page: list[dict], ref: list[dict], period: float) -> list[tuple[dict, dict]]:
    """Pairs (page segment, file segment) under the offset that aligns the most segments."""
    best: list[tuple[dict, dict]] = []
    for p0 in page:
        for r0 in ref:
            phi = r0["start"] - p0["start"]
            pairs = []
            for p in page:
                for r in ref:
                    if (circular(p["start"] + phi, r["start"], period) <= MATCH_TOLERANCE
                            and circular(p["end"] + phi, r["end"], period) <= MATCH_TOLERANCE):
                        pairs.append((p, r))
            if len(pairs) > len(best):
                best = pairs
    return best


def test_live_page_labels_equal_infer_segment_vad(browser, server, talk, run):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wav, period = talk
    cli = run("infer", "--model", "audio-cnn-synth", "--segment", "vad", "--device", "cpu", "--no-progress", str(wav))
    assert cli.returncode == 0, cli.stderr
    ref = [{**seg, "label": KOREAN[seg["label"]]} for seg in json.loads(cli.stdout.strip().splitlines()[-1])["track"]]
    assert len(ref) == 2 and ref[0]["label"] != ref[1]["label"], ref
    browser.get(server.http + "/")
    WebDriverWait(browser, 20).until(lambda d: "audio-cnn-synth" in d.find_element(By.ID, "model").text)
    assert "분노" in browser.find_element(By.ID, "legend").text  # the class names, in Hangul
    # a CJK font is there for them (fonts-noto-cjk), so they are not drawn as empty boxes
    assert browser.execute_script("return document.fonts.check('16px \"Noto Sans CJK KR\"', '분노')")
    browser.find_element(By.ID, "mic").click()
    WebDriverWait(browser, 10).until(lambda d: "streaming at" in d.find_element(By.ID, "status").text
                                     or "error" in d.find_element(By.ID, "status").get_attribute("innerHTML"))
    status = browser.find_element(By.ID, "status").text
    assert "streaming at" in status, status

    def rows():
        out = []
        for tr in browser.find_elements(By.CSS_SELECTOR, "#segments tbody tr.segment"):
            out.append({"start": float(tr.get_attribute("data-start")), "end": float(tr.get_attribute("data-end")),
                        "shown": tr.find_element(By.CSS_SELECTOR, "td.label").text})
        return out[::-1]  # the table is newest first
    saw_partial = False
    # the first segment may be cut by a start mid-utterance: wait for two more than that
    deadline = time.monotonic() + period * 2 + 10
    while time.monotonic() < deadline:
        saw_partial = saw_partial or "speaking" in browser.find_element(By.ID, "now").get_attribute("class")
        got = [r for r in rows() if r["start"] > 0.5]
        if len(got) >= 3:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the page showed {rows()} after {period * 2 + 10:.0f} s; status: "
                    f"{browser.find_element(By.ID, 'status').text}")
    assert saw_partial, "no provisional label was shown while a segment was being spoken"
    blocks = browser.find_elements(By.CSS_SELECTOR, "#timeline .seg:not(.partial)")
    assert len(blocks) >= len(got)
    shot = os.environ.get("ZOO_LIVE_SCREENSHOT")
    if shot:
        browser.save_screenshot(shot)
    browser.find_element(By.ID, "mic").click()  # stop: "end" flushes, the server closes with 1000
    WebDriverWait(browser, 10).until(lambda d: "stopped after" in d.find_element(By.ID, "status").text)

    pairs = match(got, ref, period)
    assert len(pairs) >= 2 and len(pairs) >= len(got) - 1, (
        f"page segments {got} do not line up with the file's {[(r['start'], r['end']) for r in ref]} "
        f"(period {period:.2f} s) within {MATCH_TOLERANCE} s")
    for p, r in pairs:
        assert p["shown"].endswith(r["label"]), (p, r["label"], r["probs"])
    assert {r["label"] for _, r in pairs} == {r["label"] for r in ref}, "both utterances were heard"
