"""The docqa chat: a Gradio app over one shared `Assistant`.

Thin on purpose: it wires components to `Assistant.ask/add/remove/documents` and renders what they
return (`ui/render.py`); no retrieval or answering logic lives here.

- `build_app(assistant)` makes the Blocks: chat, documents panel, settings, and two API endpoints that
  `gradio_client` can call: `/ask` (a question -> the `qa ask --json` object) and `/upload` (a file ->
  the added document's id and title).
- `launch(assistant, host, port)` queues and serves it, with the whole-document view at
  `/document/{doc_id}?start=S&end=E` (the span highlighted in place).
- `serve(index_dir, host, port, config)` loads the index and serves; `qa serve` calls it.

Sessions: each browser session has its own chat history and settings (component values are per
session); the Assistant is shared. Asks run concurrently, each on one snapshot of the index; adds and
removals are serialised.
"""

from __future__ import annotations

import logging
import threading
from html import escape
from pathlib import Path

import gradio as gr
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute

from qa.assistant import Assistant, UpdateReport
from qa.config import Config
from qa.documents import Document
from qa.errors import DocqaError
from ui import render
from ui.uploads import ALLOWED_SUFFIXES, store_uploads

log = logging.getLogger("docqa.ui")

MODES = ["hybrid", "dense", "bm25"]
MAX_TOP_K = 20
CONCURRENCY = 4  # questions answered at once; the rest wait in Gradio's queue
# System fonts only: the app must not fetch anything from the internet.
THEME = gr.themes.Default(primary_hue="blue", secondary_hue="slate", neutral_hue="slate",
                          font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "sans-serif"],
                          font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])


class ChatBackend:
    """What the components call: the shared Assistant, its locks and the upload folder."""

    def __init__(self, assistant: Assistant, upload_dir: str | Path | None = None):
        self.assistant = assistant
        index_dir = Path(assistant.index_dir)
        self.upload_dir = Path(upload_dir) if upload_dir else index_dir.parent / "uploads" / index_dir.name
        self.writes = threading.Lock()  # adds and removals take turns; answers read an index snapshot

    # -- reading --------------------------------------------------------------------------------------
    def lookup(self, doc_id: str) -> Document | None:
        try:
            return self.assistant.document(doc_id)
        except DocqaError:
            return None

    def answer_html(self, question: str, top_k: int | None, mode: str | None, threshold: float | None) -> str:
        try:
            answer = self.assistant.ask(question, top_k=top_k, mode=mode, threshold=threshold)
            return render.answer_html(answer, self.lookup)
        except DocqaError as exc:
            return render.error_html(str(exc))
        except Exception:  # noqa: BLE001 - the user sees a message, the log the traceback
            log.exception("answering %r failed", question)
            return render.error_html("Something went wrong while answering; the server log has the details.")

    def answer_dict(self, question: str, top_k: int | None, mode: str | None, threshold: float | None) -> dict:
        try:
            return self.assistant.ask(question, top_k=top_k, mode=mode, threshold=threshold).to_dict()
        except DocqaError as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    def documents(self):
        return sorted(self.assistant.documents(), key=lambda d: d.title.lower())

    # -- writing --------------------------------------------------------------------------------------
    def add(self, files: list[str], progress=None) -> UpdateReport:
        with self.writes:
            taken = {d.id for d in self.assistant.documents()}
            stored = store_uploads(files, self.upload_dir, self.assistant.config.max_document_bytes, taken)
            if progress is not None:
                progress(0.2, desc=f"Indexing {len(stored.paths)} file(s)")
            report = UpdateReport()
            if stored.paths:
                # Adding only grows the index, so answers being read meanwhile stay valid.
                report = self.assistant.add(stored.paths, show_progress=progress is not None)
            return UpdateReport(report.added, report.removed, stored.skipped + report.skipped)

    def remove(self, doc_id: str) -> UpdateReport:
        with self.writes:
            return self.assistant.remove(doc_id)


# -- documents panel helpers --------------------------------------------------------------------------
def _table(backend: ChatBackend) -> str:
    return render.documents_table(backend.documents())


def _choices(backend: ChatBackend) -> list[tuple[str, str]]:
    return [(f"{d.title[:80]} ({d.id})", d.id) for d in backend.documents()]


def _report_markdown(report: UpdateReport) -> str:
    lines = [f"✅ Added **{escape(d.title)}** (`{d.id}`, {d.chars:,} characters, {d.passages} passages)"
             for d in report.added]
    lines += [f"🗑 Removed `{doc_id}`" for doc_id in report.removed]
    lines += [f"⚠ Skipped `{escape(Path(f.path).name)}`: {escape(f.reason)}" for f in report.skipped]
    return "\n\n".join(lines) or "Nothing changed."


def _doc_link(doc_id: str | None) -> str:
    if not doc_id:
        return ""
    return f'<a href="{escape(render.document_url(doc_id))}" target="_blank" rel="noopener">Open the whole document ↗</a>'


def _file_path(file) -> str:
    return file if isinstance(file, str) else getattr(file, "path", None) or getattr(file, "name")


# -- the app ------------------------------------------------------------------------------------------
def build_app(assistant: Assistant, upload_dir: str | Path | None = None) -> gr.Blocks:
    """The chat, the documents panel and the settings over `assistant`, with `/ask` and `/upload` endpoints."""
    backend = ChatBackend(assistant, upload_dir)
    config = assistant.config
    calibrated = assistant.default_threshold

    with gr.Blocks(title="docqa · answers from your documents", analytics_enabled=False) as demo:
        demo.docqa_backend = backend  # for launch() and tests
        gr.HTML("<h1>docqa</h1><p>Every answer is an exact span of one of your documents, shown in its source. "
                "When the documents do not say, docqa says so.</p>", elem_id="dq-header")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=4):
                        chatbot = gr.Chatbot(
                            label="Chat", elem_id="chat", height="72vh", min_height=480, latex_delimiters=[], feedback_options=None,
                            buttons=["copy"], show_label=False, group_consecutive_messages=False,
                            placeholder="Ask a question about the indexed documents. The answer comes with its "
                                        "confidence and numbered citations; expand a citation to read the "
                                        "passage with the answer highlighted.")
                        with gr.Row():
                            question = gr.Textbox(placeholder="Ask a question…", show_label=False, scale=6,
                                                  elem_id="question", submit_btn=False, autofocus=True)
                            ask_button = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                    with gr.Column(scale=1, min_width=300):
                        gr.Markdown("### Settings")
                        top_k = gr.Slider(1, MAX_TOP_K, value=config.top_k, step=1, label="Passages to read",
                                          elem_id="top-k")
                        threshold = gr.Slider(0.0, 1.0, value=round(calibrated, 3), step=0.001,
                                              label="Abstention threshold", elem_id="threshold",
                                              info=f"Abstain when the best answer scores below this "
                                                   f"(calibrated: {calibrated:.3f}).")
                        mode = gr.Radio(MODES, value=config.retriever, label="Retriever", elem_id="mode",
                                        info="hybrid = dense + BM25, fused")
            with gr.Tab("Documents", id="documents"):
                docs_table = gr.HTML(_table(backend), elem_id="documents-table")
                with gr.Row():
                    with gr.Column():
                        upload = gr.File(label=f"Add documents ({' '.join(ALLOWED_SUFFIXES)}, up to "
                                               f"{config.max_document_bytes // 2**20} MB each)", file_count="multiple",
                                         file_types=list(ALLOWED_SUFFIXES), type="filepath", elem_id="upload")
                        upload_status = gr.Markdown(elem_id="upload-status")
                    with gr.Column():
                        chosen = gr.Dropdown(label="Document", choices=_choices(backend), value=None,
                                             elem_id="chosen-document")
                        doc_link = gr.HTML()
                        with gr.Row():
                            remove_button = gr.Button("Remove from index", variant="stop", size="sm")
                            refresh = gr.Button("Refresh list", size="sm")
                        remove_status = gr.Markdown()

        # API-only components: the /upload endpoint's file and result.
        api_file = gr.File(visible=False, type="filepath")
        api_result = gr.JSON(visible=False)
        api_trigger = gr.Button(visible=False)

        # -- chat -------------------------------------------------------------------------------------
        def respond(message: str, history: list, k: float, t: float, m: str):
            message = (message or "").strip()
            history = list(history or [])
            if not message:
                yield gr.update(), history
                return
            history.append({"role": "user", "content": escape(message)})
            yield "", history + [{"role": "assistant", "content": '<div class="dq-meta">Reading the documents…</div>'}]
            html = backend.answer_html(message, int(k), m or None, float(t))
            yield "", history + [{"role": "assistant", "content": html}]

        for trigger in (question.submit, ask_button.click):
            trigger(respond, [question, chatbot, top_k, threshold, mode], [question, chatbot],
                    api_visibility="private", show_progress="hidden")

        # -- documents --------------------------------------------------------------------------------
        def listing():
            return _table(backend), gr.update(choices=_choices(backend))

        def on_upload(files, progress=gr.Progress(track_tqdm=True)):
            if not files:
                return gr.update(), gr.update(), gr.update(), None
            progress(0.05, desc="Saving uploads")
            try:
                report = backend.add([_file_path(f) for f in files], progress)
                message = _report_markdown(report)
            except DocqaError as exc:
                message = f"⚠ {escape(str(exc))}"
            return (message, *listing(), None)

        upload.upload(on_upload, upload, [upload_status, docs_table, chosen, upload],
                      api_visibility="private", show_progress="full")

        def on_remove(doc_id):
            if not doc_id:
                message = "Choose a document to remove."
            else:
                try:
                    message = _report_markdown(backend.remove(doc_id))
                except DocqaError as exc:
                    message = f"⚠ {escape(str(exc))}"
            return message, _table(backend), gr.update(choices=_choices(backend), value=None), ""

        remove_button.click(on_remove, chosen, [remove_status, docs_table, chosen, doc_link],
                            api_visibility="private")
        chosen.change(_doc_link, chosen, doc_link, api_visibility="private")
        refresh.click(listing, None, [docs_table, chosen], api_visibility="private", queue=False)
        demo.load(listing, None, [docs_table, chosen], api_visibility="private", queue=False, show_progress="hidden")

        # -- API --------------------------------------------------------------------------------------
        def ask(question: str, top_k: int | None = None, mode: str | None = None,
                threshold: float | None = None) -> dict:
            """Answer `question` from the documents: the same object as `qa ask --json`."""
            return backend.answer_dict(question, top_k, mode, threshold)

        gr.api(ask, api_name="ask", concurrency_limit=CONCURRENCY)

        def upload_file(file) -> dict:
            """Add one file (.txt .md .html .htm .pdf) to the index; returns its document id and title."""
            if not file:
                raise gr.Error("no file was uploaded", print_exception=False)
            try:
                report = backend.add([_file_path(file)])
            except DocqaError as exc:
                raise gr.Error(str(exc), print_exception=False) from None
            if not report.added:
                reasons = "; ".join(f"{Path(f.path).name}: {f.reason}" for f in report.skipped) or "nothing to add"
                raise gr.Error(f"the file was not added ({reasons})", print_exception=False)
            d = report.added[0]
            return {"id": d.id, "title": d.title, "chars": d.chars, "passages": d.passages}

        api_trigger.click(upload_file, api_file, api_result, api_name="upload")
    return demo


def document_routes(backend: ChatBackend) -> list[APIRoute]:
    """`/document/{doc_id}?start=S&end=E`: the whole document, the span highlighted in place."""

    def view(doc_id: str, start: int | None = None, end: int | None = None) -> HTMLResponse:
        doc = backend.lookup(doc_id)
        if doc is None:
            return HTMLResponse(f"<!doctype html><title>Not found</title><p>No document "
                                f"<code>{escape(doc_id)}</code> in the index.</p>", status_code=404)
        return HTMLResponse(render.document_page(doc, start, end))

    return [APIRoute("/document/{doc_id}", view, methods=["GET"], response_class=HTMLResponse)]


def launch(assistant: Assistant, host: str = "127.0.0.1", port: int = 7860, block: bool = True,
           upload_dir: str | Path | None = None, quiet: bool = False) -> gr.Blocks:
    """Serve the chat over `assistant` (queue on, errors shown); with block=False, return the running app."""
    demo = build_app(assistant, upload_dir)
    demo.queue(default_concurrency_limit=CONCURRENCY)
    demo.launch(server_name=host, server_port=port, show_error=True, prevent_thread_lock=not block, quiet=quiet,
                max_file_size=assistant.config.max_document_bytes, css=render.CSS, theme=THEME,
                app_kwargs={"routes": document_routes(demo.docqa_backend)}, footer_links=["api"], run_history=False)
    return demo


def serve(index_dir: str, host: str = "127.0.0.1", port: int = 7860, config: Config | None = None) -> None:
    """Load the index at `index_dir` and serve the chat until interrupted (what `qa serve` runs)."""
    assistant = Assistant.load(index_dir, config)
    assistant.reader  # load the reader now rather than on the first question
    launch(assistant, host, port, block=True)
