"""The demo as a person meets it: in a real (headless) browser, type a sentence, click Generate,
and get a video with sound, on the first click, with no error shown (VASA-1 Sec. 4).

Needs Chromium, its ChromeDriver and selenium; skipped with a hint where they are missing. Runs
offline: selenium is given the system's browser and driver, so selenium-manager downloads nothing.
"""

import io
import json
import shutil
import socket
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from vasa_lib.demo import build
from vasa_lib.pipeline import Talker
from vasa_lib.world.speech import synthesize

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,2000"]
SENTENCE = "Hello from the browser."
STEPS = 5                   # DDIM steps: few, to keep the test short
TIMEOUT = 120               # seconds to wait for the video


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is missing: `pip install selenium` "
                                    "(or `pip install -e '.[dev]'`)")
    from selenium.webdriver.chrome.service import Service

    for program in (CHROMIUM, CHROMEDRIVER):
        if not program.exists() and not shutil.which(program.name):
            pytest.skip(f"{program} is missing: `apt-get install chromium chromium-driver` (Debian/Ubuntu)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM if CHROMIUM.exists() else shutil.which(CHROMIUM.name))
    for flag in [*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]:
        options.add_argument(flag)
    driver_path = str(CHROMEDRIVER if CHROMEDRIVER.exists() else shutil.which(CHROMEDRIVER.name))
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def app_url():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    app = build(Talker.from_checkpoints())
    app.queue(default_concurrency_limit=1).launch(server_name="127.0.0.1", server_port=free_port(),
                                                  prevent_thread_lock=True, quiet=True)
    yield app.local_url
    app.close()
    torch.set_num_threads(threads)


def fetch(url: str) -> bytes:
    """GET from the local server, never through a proxy."""
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=30) as answer:
        return answer.read()


def test_type_a_sentence_click_generate_get_a_video_with_sound(browser, app_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(app_url)
    wait = WebDriverWait(browser, TIMEOUT)
    text = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "textarea"))
    text.send_keys(Keys.CONTROL, "a")
    text.send_keys(SENTENCE)
    steps = browser.find_element(By.CSS_SELECTOR, "input[aria-label='number input for sampling steps']")
    steps.send_keys(Keys.CONTROL, "a")
    steps.send_keys(str(STEPS), Keys.TAB)
    next(b for b in browser.find_elements(By.TAG_NAME, "button") if b.text.strip() == "Generate").click()

    status = browser.find_element(By.ID, "status")
    wait.until(lambda d: "frames" in status.text or "Error" in status.text)   # the request has an answer
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "frames" in status.text, status.text                         # what was made, ...
    assert "Error" not in page and "Warning" not in page, page          # ... and no error or warning anywhere
    src = wait.until(lambda d: d.execute_script("const v = document.querySelector('video'); return v && v.src;"))

    with av.open(io.BytesIO(fetch(src))) as container:
        assert container.streams.video and container.streams.audio
        settings = json.loads(container.metadata["description"])
        frames = sum(1 for _ in container.decode(video=0))
        container.seek(0)
        sound = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    assert settings["steps"] == STEPS                                   # the page's controls reached the server
    spoken = len(synthesize(SENTENCE).audio) / 16000                    # the typed sentence, not the default one
    assert abs(frames / 25 - spoken) < 0.1, (frames, spoken)
    assert np.abs(sound).max() > 0.05                                   # sound, not silence
