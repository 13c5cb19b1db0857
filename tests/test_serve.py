"""serve: the page answers a query with base, tuned and hybrid side by side; the labelling view saves, edits and
deletes questions and keeps drafts; both driven in headless Chromium."""

from __future__ import annotations

import contextlib
import json
import os
import re
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


def test_a_busy_port_is_one_line_before_any_address_is_printed(served_run, capsys):
    from pipeline.cli import main

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert main(["serve", str(served_run.root), "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert "http://" not in out and f"cannot listen on 127.0.0.1:{port}" in err and f"--port {port + 1}" in err
    assert len(err.strip().splitlines()) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _browser(application, tmp_path):
    """Headless Chromium on `application` served by uvicorn on a free local port: yields (driver, base url)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("REPOTUNE_REQUIRE_BROWSER"):
            pytest.fail("Chromium and its driver are missing: `apt-get install chromium chromium-driver` (.ci/run does)")
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning"))
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
        yield driver, f"http://127.0.0.1:{port}"
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.browser
def test_in_a_real_browser_a_query_shows_base_and_tuned_results(served_run, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from pipeline.serve import app

    with _browser(app(served_run.root), tmp_path) as (driver, url):
        driver.get(f"{url}/")
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


# --- the labelling view: /label ------------------------------------------------------------------------------

def _ids(page: str, checked: bool | None = None) -> list[str]:
    """The chunk ids of the tick boxes on a page (only the ticked ones, or only the unticked ones)."""
    boxes = re.findall(r"<input type='checkbox' name='chunk' value='([^']+)' id='tick-\d+'( checked)?>", page)
    return [i for i, c in boxes if checked is None or bool(c) == checked]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _line_form(page: str, section: str, number: int) -> dict:
    """line and digest of the delete / discard form of `question-N` or `draft-N`."""
    item = page.split(f"id='{section}-{number}'", 1)[1].split("</li>", 1)[0]
    return {"line": re.search(r"name='line' value='(\d+)'", item).group(1), "digest": re.search(r"name='digest' value='(\w+)'", item).group(1)}


def label_rows(run) -> list[dict]:
    from pipeline.dataset import load_corpus

    return list(load_corpus(run))


@pytest.fixture(scope="module")
def label_app(served_run, tmp_path_factory):
    """One app over a copy of the served run (its question set is written here, not in served_run)."""
    from starlette.testclient import TestClient

    from pipeline.rundir import RunDir
    from pipeline.serve import app

    run = RunDir(tmp_path_factory.mktemp("label") / "run")
    shutil.copytree(served_run.root, run.root)
    return TestClient(app(run.root)), run


@pytest.fixture
def labelling(label_app):
    """The app with an empty question set and no drafts."""
    client, run = label_app
    for name in ("questions.jsonl", "questions.drafts.jsonl"):
        (run.root / name).unlink(missing_ok=True)
    return client, run


def test_saving_a_ticked_hit_appends_a_line_that_finds_that_chunk(labelling):
    from pipeline.evaluation.questions import load_questions, matches, relevant_ids

    client, run = labelling
    page = client.get("/label", params={"q": "load the cache settings", "k": 3}).text
    ids = _ids(page)
    assert 3 <= len(ids) <= 9 and len(set(ids)) == len(ids)  # the three top-3 lists pooled, each chunk once
    assert re.search(r"base \d+ · tuned \d+ · hybrid \d+", page)  # where each system ranked it
    assert "path:" not in page and re.search(r"\.(py|md):\d+-\d+", page)
    response = client.post("/label/save", data={"query": "  how do I read\nthe cache config ", "chunk": [ids[1]]}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/label?msg=saved")
    assert run.questions == run.root / "questions.jsonl"  # evaluate.questions is unset: the run's own file
    [line] = _lines(run.questions)
    assert line["query"] == "how do I read the cache config" and len(line["relevant"]) == 1
    rows = label_rows(run)
    ticked = next(r for r in rows if r["id"] == ids[1])
    assert matches(line["relevant"][0], ticked)
    assert ids[1] in relevant_ids(load_questions(run.questions), rows, [r["id"] for r in rows], "set")["q1"]
    shown = client.get(response.headers["location"]).text
    assert "saved question 1" in shown and "how do I read the cache config" in shown.split("id='questions'", 1)[1]


def test_labelling_never_writes_a_set_outside_the_run(served_run, tmp_path):
    """`make train` names the checkout's tracked quality/questions.jsonl: the view saves into the run's own copy."""
    from starlette.testclient import TestClient

    from pipeline.config import recipe_from_dict
    from pipeline.rundir import RunDir
    from pipeline.serve import app

    run = RunDir(tmp_path / "run")
    shutil.copytree(served_run.root, run.root)
    (run.root / "questions.jsonl").unlink(missing_ok=True)
    tracked = tmp_path / "checkout" / "questions.jsonl"
    tracked.parent.mkdir()
    tracked.write_text(json.dumps({"query": "where is the cache loaded", "relevant": [{"path": "pkg/cache.py", "symbol": "load_cache"}]}) + "\n")
    before = tracked.read_text()
    run.config.write_text(recipe_from_dict(run.read_recipe().to_dict(), [f"evaluate.questions={tracked}"]).to_yaml())
    client = TestClient(app(run.root))
    ids = _ids(client.get("/label", params={"q": "load the cache settings", "k": 3}).text)
    response = client.post("/label/save", data={"query": "how do I read the cache config", "chunk": [ids[0]]}, follow_redirects=False)
    assert response.status_code == 303 and tracked.read_text() == before
    own = _lines(run.root / "questions.jsonl")
    assert [q["query"] for q in own] == ["where is the cache loaded", "how do I read the cache config"]  # begun as its copy
    assert f"--set evaluate.questions={run.root / 'questions.jsonl'}" in client.get("/label").text


def test_editing_changes_words_and_ticks_and_deleting_removes_only_that_line(labelling):
    client, run = labelling
    ids = _ids(client.get("/label", params={"q": "register an item with the manager"}).text)
    for query, chunk in (("first question here", ids[0]), ("second question here", ids[1]), ("third question here", ids[2])):
        assert client.post("/label/save", data={"query": query, "chunk": chunk}, follow_redirects=False).status_code == 303
    before = run.questions.read_text().splitlines()
    page = client.get("/label").text
    edit = re.search(r"<li id='question-2'>.*?href='([^']+)' class='edit'", page).group(1).replace("&amp;", "&")
    form = client.get(edit).text
    assert "value='second question here'" in form and _ids(form, checked=True) == [ids[1]]  # the old ticks, shown ticked
    target = _line_form(page, "question", 2)
    r = client.post("/label/save", data={"query": "second, in other words", "chunk": [ids[3]], "mode": "edit", **target}, follow_redirects=False)
    assert r.status_code == 303
    after = run.questions.read_text().splitlines()
    assert after[0] == before[0] and after[2] == before[2] and json.loads(after[1])["query"] == "second, in other words"
    assert json.loads(after[1])["relevant"] != json.loads(before[1])["relevant"]
    # the form of the line as it was is stale now: refused, nothing written
    stale = client.post("/label/delete", data=target, follow_redirects=False)
    assert stale.status_code == 409 and "changed since the page showed it" in stale.text and run.questions.read_text().splitlines() == after
    r = client.post("/label/delete", data=_line_form(client.get("/label").text, "question", 1), follow_redirects=False)
    assert r.status_code == 303 and run.questions.read_text().splitlines() == after[1:]


def test_the_counter_counts_saved_questions_toward_the_policy_minimum(labelling):
    import yaml

    from pipeline.publishing.gate import POLICY

    client, run = labelling
    minimum = yaml.safe_load(POLICY.read_text())["questions"]["min_questions"]
    assert f"id='counter'>0 of {minimum} questions the gate asks for<" in client.get("/label").text
    chunk = _ids(client.get("/label", params={"q": "cache"}).text)[0]
    client.post("/label/save", data={"query": "where is the cache", "chunk": chunk})
    client.post("/label/save", data={"query": "where is the cache kept", "chunk": chunk})
    page = client.get("/label").text
    assert f"id='counter'>2 of {minimum} questions the gate asks for<" in page
    assert f"--set evaluate.questions={run.questions}" in page and f"repotune evaluate {run.root}" in page


def test_the_counter_says_when_the_minimum_is_reached(served_run, tmp_path):
    from starlette.testclient import TestClient

    from pipeline.serve import app, gate_minimum

    policy = tmp_path / "policy.yaml"
    policy.write_text("questions:\n  min_questions: 7\n")
    assert gate_minimum(policy) == 7
    run = tmp_path / "run"
    shutil.copytree(served_run.root, run)
    (run / "questions.jsonl").write_text(json.dumps({"query": "q", "relevant": [{"path": "README.md", "contains": "pip"}]}) + "\n")
    assert "id='counter'>1 of 1 questions the gate asks for (enough)<" in TestClient(app(run, minimum=1)).get("/label").text


def test_a_malformed_set_is_shown_and_never_rewritten(labelling):
    client, run = labelling
    text = json.dumps({"query": "fine", "relevant": [{"path": "README.md", "contains": "pip"}]}) + '\n{"query": "cut off\n'
    run.questions.write_text(text)
    page = client.get("/label", params={"q": "install"}).text
    assert "id='set-error'" in page and "questions.jsonl:2: not JSON" in page and "fix or remove that line by hand" in page
    assert "id='label-form'" not in page and "class='delete'" not in page  # nothing offers to write
    chunk = next(r["id"] for r in label_rows(run) if r["path"] == "README.md")
    r = client.post("/label/save", data={"query": "how do I install it", "chunk": chunk})
    assert r.status_code == 409 and "Nothing was written" in r.text and run.questions.read_text() == text
    r = client.post("/label/delete", data={"line": "1", "digest": "0"})
    assert r.status_code == 409 and "Nothing was written" in r.text and run.questions.read_text() == text


def test_a_save_without_a_tick_or_of_a_question_already_there_says_what_to_do(labelling):
    client, run = labelling
    r = client.post("/label/save", data={"query": "where is the cache"})
    assert r.status_code == 400 and "tick at least one chunk" in r.text and not run.questions.exists()
    assert "value='where is the cache'" in r.text  # the words typed are still in the box
    chunk = _ids(client.get("/label", params={"q": "cache"}).text)[0]
    assert client.post("/label/save", data={"query": "where is the cache", "chunk": chunk}, follow_redirects=False).status_code == 303
    r = client.post("/label/save", data={"query": "Where is  the cache", "chunk": chunk})
    assert r.status_code == 400 and "is question 1 already" in r.text and len(_lines(run.questions)) == 1


def test_drafts_are_listed_apart_and_count_once_kept(labelling):
    from pipeline.evaluation.drafts import draft_questions

    client, run = labelling
    n = draft_questions(run.root)["n"]
    page = client.get("/label").text
    assert f"Drafts ({n})" in page and "id='counter'>0 of" in page and "How do I load cache settings?" in page.split("id='drafts'", 1)[1]
    drafts_file = run.root / "questions.drafts.jsonl"
    number = next(i for i, d in enumerate(_lines(drafts_file), 1) if d["query"] == "How do I load cache settings?")
    keep = re.search(rf"<li id='draft-{number}'>.*?href='([^']+)' class='keep'", page).group(1).replace("&amp;", "&")
    form = client.get(keep).text
    ticked = _ids(form, checked=True)
    assert ticked == ["docs/cache.md:5-7:" + ticked[0].rsplit(":", 1)[1]]  # the draft's section, ticked already
    target = _line_form(page, "draft", number)
    r = client.post("/label/save", data={"query": "how do I load the cache settings", "chunk": ticked, "mode": "draft", **target},
                    follow_redirects=False)
    assert r.status_code == 303 and "kept the draft as question 1" in client.get(r.headers["location"]).text
    assert _lines(run.questions) == [{"query": "how do I load the cache settings",
                                      "relevant": [{"path": "docs/cache.md", "symbol": "The cache guide > How do I load cache settings?"}]}]
    assert len(_lines(drafts_file)) == n - 1 and "How do I load cache settings?" not in [d["query"] for d in _lines(drafts_file)]
    page = client.get("/label").text
    assert "id='counter'>1 of" in page
    first = _lines(drafts_file)[0]["query"]
    r = client.post("/label/discard", data=_line_form(page, "draft", 1), follow_redirects=False)
    assert r.status_code == 303 and first not in [d["query"] for d in _lines(drafts_file)] and len(_lines(drafts_file)) == n - 2
    assert len(_lines(run.questions)) == 1  # discarding writes nothing to the set


def test_a_write_from_another_site_is_refused(labelling):
    client, run = labelling
    chunk = _ids(client.get("/label", params={"q": "cache"}).text)[0]
    r = client.post("/label/save", data={"query": "planted", "chunk": chunk}, headers={"origin": "http://elsewhere.example"})
    assert r.status_code == 403 and not run.questions.exists()
    # Colab's proxy of the kernel port (the view inside the notebook) is the page's own origin
    r = client.post("/label/save", data={"query": "through the notebook", "chunk": chunk}, follow_redirects=False,
                    headers={"origin": "https://abc123-7860-colab.googleusercontent.com"})
    assert r.status_code == 303 and len(_lines(run.questions)) == 1


def test_the_set_is_the_file_evaluate_questions_names(served_run, tmp_path):
    import yaml

    from pipeline.rundir import RunDir

    run = RunDir(tmp_path / "run")
    shutil.copytree(served_run.root, run.root)
    assert run.questions == run.root / "questions.jsonl"
    config = yaml.safe_load(run.config.read_text())
    config["evaluate"]["questions"] = "quality/mine.jsonl"  # relative, and not in the working directory: the repository's
    run.config.write_text(yaml.safe_dump(config))
    assert run.questions == Path(run.read_manifest()["source"]["path"]) / "quality" / "mine.jsonl"


@pytest.mark.browser
def test_in_a_real_browser_questions_are_labelled_edited_deleted_and_evaluated(served_run, tmp_path):
    """Type a question, tick a hit, save, reload: the file holds it. Three questions; one edited, one
    deleted through the page, one more labelled; then `repotune evaluate RUN --set evaluate.questions=PATH` measures the run on them."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from pipeline.cli import main
    from pipeline.evaluation.questions import matches
    from pipeline.rundir import RunDir
    from pipeline.serve import app

    run = RunDir(tmp_path / "run")
    shutil.copytree(served_run.root, run.root)
    path = run.questions
    rows = {r["id"]: r for r in label_rows(run)}

    with _browser(app(run.root), tmp_path) as (driver, url):
        wait = WebDriverWait(driver, 60)

        def label(search: str, question: str, tick: int) -> str:
            box = driver.find_element(By.ID, "q")
            box.clear()
            box.send_keys(search)
            driver.find_element(By.ID, "go").click()
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#pool .cand")))
            words = driver.find_element(By.ID, "query")
            assert words.get_attribute("value") == search  # the question box starts with the words searched
            words.clear()
            words.send_keys(question)
            chunk = driver.find_elements(By.CSS_SELECTOR, "#pool input[name=chunk]")[tick]
            chunk.click()
            chunk_id = chunk.get_attribute("value")
            driver.find_element(By.ID, "save").click()
            wait.until(ec.presence_of_element_located((By.ID, "message")))
            return chunk_id

        driver.get(f"{url}/label")
        assert driver.find_element(By.ID, "counter").text.startswith("0 of ")
        first = label("load the cache settings", "how do I read the cache configuration from disk", 0)
        driver.refresh()
        assert [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#questions .query")] == ["how do I read the cache configuration from disk"]
        [saved] = _lines(path)
        assert saved["query"] == "how do I read the cache configuration from disk" and len(saved["relevant"]) == 1
        assert matches(saved["relevant"][0], rows[first])

        second = label("register an item with the manager", "add an item to a manager", 1)
        third = label("the tokenizer guide", "where is the tokenizer explained", 0)
        assert driver.find_element(By.ID, "counter").text.startswith("3 of ")
        assert [q["query"] for q in _lines(path)] == ["how do I read the cache configuration from disk", "add an item to a manager",
                                                      "where is the tokenizer explained"]

        # edit question 2: other words, another tick in place of the old one
        driver.find_element(By.CSS_SELECTOR, "#question-2 a.edit").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#pool .cand")))
        ticked = driver.find_elements(By.CSS_SELECTOR, "#pool input[name=chunk]:checked")
        assert [t.get_attribute("value") for t in ticked] == [second]
        ticked[0].click()
        other = next(b for b in driver.find_elements(By.CSS_SELECTOR, "#pool input[name=chunk]") if b.get_attribute("value") != second)
        other.click()
        edited = other.get_attribute("value")
        words = driver.find_element(By.ID, "query")
        words.clear()
        words.send_keys("how do I add an item to one of the managers")
        driver.find_element(By.ID, "save").click()
        wait.until(ec.presence_of_element_located((By.ID, "message")))
        lines = _lines(path)
        assert lines[1]["query"] == "how do I add an item to one of the managers"
        assert matches(lines[1]["relevant"][0], rows[edited]) and not any(matches(e, rows[second]) for e in lines[1]["relevant"])

        # delete question 1 (the page asks first)
        driver.find_element(By.CSS_SELECTOR, "#question-1 button.delete").click()
        wait.until(ec.alert_is_present()).accept()
        wait.until(ec.text_to_be_present_in_element((By.ID, "message"), "deleted question 1"))
        lines = _lines(path)
        assert [q["query"] for q in lines] == ["how do I add an item to one of the managers", "where is the tokenizer explained"]
        assert matches(lines[1]["relevant"][0], rows[third])
        assert driver.find_element(By.ID, "counter").text.startswith("2 of ")
        label("install the package", "how do I install it", 0)  # three labelled questions stay in the set
        assert driver.find_element(By.ID, "counter").text.startswith("3 of ")
        lines = _lines(path)
        command = driver.find_element(By.ID, "evaluate-command").text
        assert command == f"repotune evaluate {run.root} --set evaluate.questions={path}"

    assert main(["-q", *command.split()[1:]]) == 0  # the command the page shows, as the user would run it
    metrics = json.loads(run.metrics.read_text())
    assert metrics["questions"]["n"] == len(lines) == 3 and metrics["questions"]["source"] == str(path)
