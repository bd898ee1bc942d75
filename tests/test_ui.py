"""The chat, end to end: the real Gradio server on a free local port, driven by gradio_client and by
headless Chromium (Playwright), over an index of the seed documents built with the default models.

The shipped reader is retrained from time to time, so no test asserts an answer string for a seed
question: they assert the structure, the offsets (`document.text[start:end] == citation text`), and that
a fact only an uploaded document holds is answered from that document.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from qa.answer import Answer, Citation  # noqa: E402
from qa.documents import Document  # noqa: E402
from qa.passages import Passage  # noqa: E402
from qa.retrieval import Hit  # noqa: E402
from ui import render  # noqa: E402
from ui.uploads import safe_name, store_uploads  # noqa: E402

from helpers import free_port  # noqa: E402

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
QUESTION = "Who is the CSTO Secretary General?"
ANSWER_KEYS = {"answer", "score", "abstained", "reason", "citations", "alternatives"}
CITATION_KEYS = {"doc_id", "title", "start", "end", "text", "sentence", "sentence_start", "page"}
NEW_DOC = ("Lumenhaven Lighthouse\n\n"
           "The Lumenhaven lighthouse stands on the rocky island of Varnholm. Its first keeper was Ottoline "
           "Brackwater, who lit the lamp in 1852. The lighthouse is painted in red and white bands.\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app over a fresh seed index, served on 127.0.0.1 by the same `launch` that `qa serve` uses."""
    from qa.assistant import Assistant
    from qa.config import Config
    from ui.app import launch

    root = tmp_path_factory.mktemp("ui")
    assistant = Assistant.build([SEEDS], root / "index", Config())
    demo = launch(assistant, "127.0.0.1", free_port(), block=False, upload_dir=root / "uploads", quiet=True)
    try:
        yield demo.local_url.rstrip("/"), assistant, root, demo
    finally:
        demo.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server[0], verbose=False)


def check_citation(assistant, c: dict) -> None:
    assert set(c) == CITATION_KEYS
    doc = assistant.document(c["doc_id"])
    assert doc.text[c["start"]:c["end"]] == c["text"] and c["text"]
    assert c["title"] == doc.title
    assert doc.text[c["sentence_start"]:c["sentence_start"] + len(c["sentence"])] == c["sentence"]
    assert c["sentence_start"] <= c["start"] and c["end"] <= c["sentence_start"] + len(c["sentence"])


# -- the API, through gradio_client -----------------------------------------------------------------------
def test_api_lists_ask_and_upload(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/ask", "/upload"} <= set(endpoints)


def test_ask_returns_the_cli_json_object(server, client):
    _, assistant, _, _ = server
    result = client.predict(QUESTION, api_name="/ask")
    assert set(result) == ANSWER_KEYS
    # The same object `qa ask --json` prints (Answer.to_dict), through JSON and back.
    assert result == json.loads(json.dumps(assistant.ask(QUESTION).to_dict()))
    for c in result["citations"] + [c for alt in result["alternatives"] for c in alt["citations"]]:
        check_citation(assistant, c)


def test_ask_with_settings_gives_a_cited_answer(server, client):
    _, assistant, _, _ = server
    result = client.predict(QUESTION, top_k=3, mode="hybrid", threshold=0.0, api_name="/ask")
    assert result["abstained"] is False and result["reason"] is None
    assert result["answer"] and 0.0 < result["score"] <= 1.0
    assert result["citations"] and result["citations"][0]["text"] == result["answer"]
    for c in result["citations"]:
        check_citation(assistant, c)
    for alt in result["alternatives"]:
        assert set(alt) == {"answer", "score", "citations"} and alt["score"] <= result["score"]


def test_ask_bad_question_is_a_message(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="empty"):
        client.predict("   ", api_name="/ask")


def test_upload_then_answer_from_it(server, client, tmp_path):
    from gradio_client import handle_file

    _, assistant, root, _ = server
    path = tmp_path / "lumenhaven lighthouse.txt"
    path.write_text(NEW_DOC, encoding="utf-8")
    added = client.predict(handle_file(str(path)), api_name="/upload")
    assert added["id"] == "lumenhaven_lighthouse" and added["title"] == "Lumenhaven Lighthouse"
    assert added["id"] in {d.id for d in assistant.documents()}
    assert (root / "uploads" / "lumenhaven_lighthouse.txt").read_text(encoding="utf-8") == NEW_DOC

    result = client.predict("Who was the first keeper of the Lumenhaven lighthouse?", top_k=1, threshold=0.0,
                            api_name="/ask")
    assert not result["abstained"] and result["citations"]
    for c in result["citations"]:
        assert c["doc_id"] == added["id"]
        check_citation(assistant, c)


def test_upload_refuses_bad_files_with_reasons(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    bad = tmp_path / "data.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(AppError, match="unsupported file type .csv"):
        client.predict(handle_file(str(bad)), api_name="/upload")
    seed = next(SEEDS.glob("*.txt"))
    with pytest.raises(AppError, match="already indexed"):
        client.predict(handle_file(str(seed)), api_name="/upload")


def test_concurrent_clients_get_their_own_answers(server):
    from gradio_client import Client

    url, assistant, _, _ = server
    questions = [QUESTION, "Where is the CSTO headquartered?"]
    results: dict[str, dict] = {}

    def ask(q: str) -> None:
        results[q] = Client(url, verbose=False).predict(q, threshold=0.0, api_name="/ask")

    threads = [threading.Thread(target=ask, args=(q,)) for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for q in questions:
        assert results[q] == json.loads(json.dumps(assistant.ask(q, threshold=0.0).to_dict()))


def test_document_view_highlights_the_span(server):
    url, assistant, _, _ = server
    doc = sorted(assistant.documents(), key=lambda d: d.id)[0]
    text = assistant.document(doc.id).text
    start, end = 10, 30
    page = httpx.get(f"{url}/document/{doc.id}", params={"start": start, "end": end})
    assert page.status_code == 200
    assert f'<mark id="answer">{render._text(text[start:end])}</mark>' in page.text
    assert httpx.get(f"{url}/document/no-such-doc").status_code == 404


# -- the page, in headless Chromium ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def ask_in_page(page, question: str, threshold: str | None = None) -> None:
    from playwright.sync_api import expect

    if threshold is not None:
        box = page.locator("#threshold input[type=number]")
        box.fill(threshold)
        box.press("Enter")
        expect(page.locator("#threshold input[type=range]")).to_have_value(threshold)
    page.locator("#question textarea").fill(question)
    page.locator("#question textarea").press("Enter")
    page.locator("#chat .dq-answer:not(:has-text('Reading the documents'))").last.wait_for(timeout=60_000)


def test_chat_page_shows_the_highlighted_span(server, client, browser, tmp_path):
    from playwright.sync_api import expect

    url, assistant, _, _ = server
    expected = client.predict(QUESTION, threshold=0.0, api_name="/ask")  # the page's settings, below
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(url)
    ask_in_page(page, QUESTION, threshold="0")

    answer = page.locator("#chat .dq-answer").last
    expect(answer.locator(".dq-answer-text")).to_contain_text(expected["answer"])
    expect(answer.locator(".dq-meta .dq-conf")).to_contain_text("confidence")
    first = answer.locator("details.dq-cite").first
    expect(first.locator(".dq-num")).to_have_text("1")
    expect(first.locator(".dq-title")).to_have_text(expected["citations"][0]["title"])
    mark = first.locator("mark.dq-span")
    expect(mark).to_be_visible()
    expect(mark).to_have_text(expected["citations"][0]["text"])
    if expected["alternatives"]:
        expect(answer.locator("details.dq-alts li")).to_have_count(len(expected["alternatives"]))

    shot = tmp_path / "chat.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    # The citation's link opens the whole document with the same span highlighted in place.
    with page.context.expect_page() as opened:
        first.locator(".dq-links a").click()
    doc_page = opened.value
    doc_page.wait_for_load_state()
    expect(doc_page.locator("mark#answer")).to_have_text(expected["citations"][0]["text"])
    expect(doc_page.locator("h1")).to_have_text(expected["citations"][0]["title"])
    page.close()
    doc_page.close()


def test_chat_abstains_plainly_sessions_stay_apart_and_documents_panel(server, browser, tmp_path):
    from playwright.sync_api import expect

    url, assistant, _, _ = server
    demo = server[3]
    one, two = browser.new_context().new_page(), browser.new_context().new_page()
    for page in (one, two):
        page.goto(url)
    ask_in_page(one, "Xqzvth wplorn gribbet snarfle?")
    ask_in_page(two, QUESTION, threshold="0")
    abstained = one.locator("#chat .dq-abstained")
    expect(abstained).to_contain_text("The documents do not answer this.")
    expect(two.locator("#chat .dq-abstained")).to_have_count(0)
    expect(one.locator("#chat")).not_to_contain_text(QUESTION)
    expect(two.locator("#chat")).not_to_contain_text("Xqzvth")

    # The documents panel lists the indexed documents with their titles and sizes.
    one.get_by_role("tab", name="Documents").click()
    table = one.locator("#documents-table")
    for d in assistant.documents():
        expect(table).to_contain_text(d.id)
        expect(table).to_contain_text(f"{d.chars:,}")

    # Upload in the page: the file is indexed, reported and listed.
    upload = tmp_path / "tide-tables.md"
    upload.write_text("# Tide tables of Varnholm\n\nHigh tide at Varnholm harbour comes at 06:40.\n", encoding="utf-8")
    one.locator("#upload input[type=file]").set_input_files(str(upload))
    expect(one.locator("#upload-status")).to_contain_text("Added Tide tables of Varnholm", timeout=60_000)
    expect(table).to_contain_text("tide-tables")
    assert "tide-tables" in {d.id for d in assistant.documents()}

    # Removal (what the panel's Remove button calls) takes it out of the index and of the document view.
    demo.docqa_backend.remove("tide-tables")
    assert "tide-tables" not in {d.id for d in assistant.documents()}
    assert httpx.get(f"{url}/document/tide-tables").status_code == 404
    for page in (one, two):
        page.context.close()


# -- rendering and uploads, without a server ----------------------------------------------------------------
def test_rendering_escapes_document_text():
    evil = '<img src=x onerror="alert(1)">'
    text = f"{evil} The keeper was <b>Ada</b> & co."
    doc = Document("d", f"Title {evil}", text, "d.txt")
    start = text.index("<b>Ada</b>")
    c = Citation("d", doc.title, start, start + len("<b>Ada</b>"), "<b>Ada</b>", text, 0)
    hit = Hit(Passage("d", 0, len(text), text), 1.0, 1, 1)
    html = render.answer_html(Answer("<b>Ada</b>", 0.9, False, None, [c], passages=[hit]), {"d": doc}.get)
    assert "<img" not in html and "<b>" not in html
    assert '<mark class="dq-span">&lt;b&gt;Ada&lt;/b&gt;</mark>' in html
    page = render.document_page(doc, c.start, c.end)
    assert "<img" not in page and '<mark id="answer">&lt;b&gt;Ada&lt;/b&gt;</mark>' in page
    abstained = render.answer_html(Answer(None, 0.0, True, "no passage is relevant", passages=[hit]), {"d": doc}.get)
    assert "do not answer this" in abstained and "<img" not in abstained


def test_safe_names_stay_in_their_folder():
    assert safe_name("../../etc/passwd.txt") == "passwd.txt"
    assert safe_name("..\\..\\win.MD") == "win.md"
    assert safe_name("my report (final).pdf") == "my_report_final.pdf"
    assert safe_name("...") == "document"


@given(st.text(max_size=60))
def test_safe_names_never_escape(name):
    folder = Path("/srv/uploads")
    safe = safe_name(name)
    assert safe and not safe.startswith(".") and "/" not in safe and "\\" not in safe
    assert (folder / safe).resolve().parent == folder


def test_store_uploads_checks_type_size_and_taken_ids(tmp_path):
    good, big, odd, taken = (tmp_path / n for n in ("a b.txt", "big.md", "x.exe", "seed.txt"))
    for f in (good, odd, taken):
        f.write_text("hello", encoding="utf-8")
    big.write_bytes(b"x" * 2048)
    stored = store_uploads([good, big, odd, taken], tmp_path / "up", max_bytes=1024, taken={"seed"})
    assert stored.paths == [(tmp_path / "up" / "a_b.txt").resolve()]
    reasons = {Path(f.path).name: f.reason for f in stored.skipped}
    assert "over the" in reasons["big.md"] and "unsupported" in reasons["x.exe"]
    assert "already indexed" in reasons["seed.txt"]
