"""serve: the page answers a query with base, tuned and hybrid side by side; driven in headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def served_run(built_run, tmp_path_factory):
    """The fixture run, with the tiny base saved as its 'tuned' model and a small report with a plot."""
    from support import run_with_base_as_model

    run = run_with_base_as_model(built_run, tmp_path_factory.mktemp("serve") / "run", {"context": False, "hybrid_alpha": 0.8})
    run.plots.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(__file__).resolve().parents[1] / "bench" / "results" / "build_scaling.png", run.plots / "retrieval.png")
    run.report.write_text("# repotune report: fixture\n\n| model | nDCG@10 |\n|---|---|\n| base | 0.5 |\n\n![retrieval](plots/retrieval.png)\n")
    return run


def test_the_page_shows_three_result_lists_and_the_report(served_run):
    from starlette.testclient import TestClient

    from pipeline.serve import app

    client = TestClient(app(served_run.root))
    empty = client.get("/")
    assert empty.status_code == 200 and "<table>" in empty.text and "class='hit'" not in empty.text
    page = client.get("/", params={"q": "load the cache settings", "k": 3}).text
    for key in ("base", "tuned", "hybrid"):
        column = page.split(f"id='{key}'", 1)[1].split("</div></div>", 1)[0]
        assert column.count("class='hit'") >= 1
    assert page.count("class='hit'") == 9 and page.count(".py:") + page.count(".md:") == 9  # path:lines of each hit
    assert client.get("/plots/retrieval.png").status_code == 200
    assert client.get("/plots/..%2Fconfig.yaml").status_code == 404  # nothing outside plots/


def test_serve_without_a_model_says_what_to_run(built_run):
    from pipeline.serve import ServeError, app

    with pytest.raises(ServeError, match="repotune run"):
        app(built_run)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.browser
def test_in_a_real_browser_a_query_shows_base_and_tuned_results(served_run, tmp_path):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("REPOTUNE_REQUIRE_BROWSER"):
            pytest.fail("Chromium and its driver are missing: `apt-get install chromium chromium-driver` (.ci/run does)")
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from pipeline.serve import app

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app(served_run.root), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        box = driver.find_element(By.ID, "q")
        box.send_keys("register an item with the manager")
        driver.find_element(By.ID, "go").click()
        WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#tuned .hit")))
        for key in ("base", "tuned", "hybrid"):
            hits = driver.find_elements(By.CSS_SELECTOR, f"#{key} .hit .where")
            assert len(hits) == 5 and all(":" in h.text for h in hits)
        assert driver.find_element(By.ID, "q").get_attribute("value") == "register an item with the manager"
        assert driver.execute_script("return document.querySelector('.report img').naturalWidth") > 0  # the plot loaded
        driver.save_screenshot(str(tmp_path / "serve.png"))
        assert (tmp_path / "serve.png").stat().st_size > 10_000
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(timeout=10)
