"""HTML for the chat: answers with numbered citations, highlighted passages, abstentions, the document view.

Pure functions from the library's objects to strings. Every piece of document text goes through
`html.escape`, so a document cannot inject markup. Offsets always refer to `Document.text`: a highlight
is `text[start:end]` wrapped in `<mark>`, nothing else. The chat renders messages as Markdown with raw
HTML, where a blank line ends an HTML block, so the fragments here never contain newlines.
"""

from __future__ import annotations

from html import escape
from typing import Callable
from urllib.parse import quote

from qa.answer import Answer, Citation
from qa.documents import Document
from qa.retrieval import Hit

# How much of a document to show around a cited span when no retrieved passage holds it.
CONTEXT_CHARS = 300
# Closest passages shown when the assistant abstains.
CLOSEST_PASSAGES = 3

DocumentLookup = Callable[[str], "Document | None"]


def _text(s: str) -> str:
    """Escaped text with newlines turned into <br> (the chat's HTML blocks must stay on one line)."""
    return escape(s).replace("\r", "").replace("\n", "<br>")


def document_url(doc_id: str, start: int | None = None, end: int | None = None) -> str:
    """The whole-document view, relative to the app's root, scrolled to the highlighted span."""
    url = f"document/{quote(doc_id, safe='')}"
    if start is not None and end is not None:
        url += f"?start={start}&end={end}#answer"
    return url


def highlighted(text: str, start: int, end: int, window: tuple[int, int] | None = None) -> str:
    """`text[window]` escaped, with `text[start:end]` wrapped in <mark>. Ellipses mark cut edges."""
    lo, hi = window or (0, len(text))
    lo, hi = max(0, min(lo, start)), min(len(text), max(hi, end))
    before, span, after = text[lo:start], text[start:end], text[end:hi]
    return ("…" if lo > 0 else "") + _text(before) + f'<mark class="dq-span">{_text(span)}</mark>' + _text(after) \
        + ("…" if hi < len(text) else "")


def _context_window(citation: Citation, passages: list[Hit], doc: Document | None) -> tuple[int, int]:
    """The retrieved passage that holds the citation, else its sentence widened to some context."""
    for hit in passages:
        p = hit.passage
        if p.doc_id == citation.doc_id and p.start <= citation.start and citation.end <= p.end:
            return p.start, p.end
    start = citation.sentence_start
    end = start + len(citation.sentence)
    if doc is not None:
        start, end = max(0, start - CONTEXT_CHARS // 2), min(len(doc.text), end + CONTEXT_CHARS // 2)
    return start, end


def source_passage(citation: Citation, passages: list[Hit], lookup: DocumentLookup) -> str:
    """The passage around a citation with the answer span highlighted."""
    doc = lookup(citation.doc_id)
    if doc is not None and doc.text[citation.start:citation.end] == citation.text:
        return highlighted(doc.text, citation.start, citation.end, _context_window(citation, passages, doc))
    # The document changed or went away since the answer: show the sentence the citation carries.
    offset = citation.start - citation.sentence_start
    if 0 <= offset and citation.sentence[offset:offset + len(citation.text)] == citation.text:
        return highlighted(citation.sentence, offset, offset + len(citation.text))
    return _text(citation.sentence)


def _where(c: Citation) -> str:
    page = f", page {c.page}" if c.page else ""
    return f"characters {c.start:,}–{c.end:,}{page}"


def citation_block(n: int, c: Citation, passages: list[Hit], lookup: DocumentLookup, open_: bool) -> str:
    """One numbered citation: title in the summary; the highlighted passage and a link when expanded."""
    return (f'<details class="dq-cite"{" open" if open_ else ""}>'
            f'<summary><span class="dq-num">{n}</span> <span class="dq-title">{_text(c.title)}</span> '
            f'<span class="dq-where">{escape(_where(c))}</span></summary>'
            f'<div class="dq-passage">{source_passage(c, passages, lookup)}</div>'
            f'<div class="dq-links"><a href="{escape(document_url(c.doc_id, c.start, c.end))}" target="_blank" '
            f'rel="noopener">Open “{_text(c.title)}” with the answer highlighted ↗</a></div>'
            f'</details>')


def confidence(score: float) -> str:
    level = "high" if score >= 0.5 else "medium" if score >= 0.2 else "low"
    return f'<span class="dq-conf dq-conf-{level}" title="reader score {score:.4f}">confidence {score:.0%}</span>'


def _alternatives(alternatives: list[Answer], passages: list[Hit], lookup: DocumentLookup, label: str) -> str:
    if not alternatives:
        return ""
    items = []
    for alt in alternatives:
        cites = "".join(citation_block(n, c, passages, lookup, open_=False)
                        for n, c in enumerate(alt.citations, start=1))
        items.append(f'<li><span class="dq-alt-text">{_text(alt.text or "")}</span> {confidence(alt.score)}'
                     f'{cites}</li>')
    return (f'<details class="dq-alts"><summary>{escape(label)} ({len(alternatives)})</summary>'
            f'<ol>{"".join(items)}</ol></details>')


def answer_html(answer: Answer, lookup: DocumentLookup) -> str:
    """The chat message for an answer (or an abstention)."""
    if answer.abstained:
        return abstention_html(answer, lookup)
    refs = "".join(f'<sup class="dq-ref">[{n}]</sup>' for n in range(1, len(answer.citations) + 1))
    places = len(answer.citations)
    cites = "".join(citation_block(n, c, answer.passages, lookup, open_=(n == 1))
                    for n, c in enumerate(answer.citations, start=1))
    return (f'<div class="dq-answer">'
            f'<div class="dq-answer-text">{_text(answer.text or "")}{refs}</div>'
            f'<div class="dq-meta">{confidence(answer.score)} <span class="dq-found">exact span found in '
            f'{places} place{"s" if places != 1 else ""} of the documents</span></div>'
            f'<div class="dq-cites">{cites}</div>'
            f'{_alternatives(answer.alternatives, answer.passages, lookup, "Other possible answers")}'
            f'</div>')


def closest_passage(n: int, hit: Hit, lookup: DocumentLookup) -> str:
    p = hit.passage
    doc = lookup(p.doc_id)
    title = doc.title if doc is not None else p.doc_id
    return (f'<details class="dq-cite"{" open" if n == 1 else ""}>'
            f'<summary><span class="dq-num">{n}</span> <span class="dq-title">{_text(title)}</span> '
            f'<span class="dq-where">characters {p.start:,}–{p.end:,}</span></summary>'
            f'<div class="dq-passage">{_text(p.text)}</div>'
            f'<div class="dq-links"><a href="{escape(document_url(p.doc_id, p.start, p.end))}" target="_blank" '
            f'rel="noopener">Open “{_text(title)}” at this passage ↗</a></div>'
            f'</details>')


def abstention_html(answer: Answer, lookup: DocumentLookup) -> str:
    closest = "".join(closest_passage(n, h, lookup)
                      for n, h in enumerate(answer.passages[:CLOSEST_PASSAGES], start=1))
    looked = (f'<div class="dq-subhead">The closest passages I looked at:</div><div class="dq-cites">{closest}</div>'
              if closest else "")
    return (f'<div class="dq-answer dq-abstained">'
            f'<div class="dq-answer-text">The documents do not answer this.</div>'
            f'<div class="dq-meta"><span class="dq-reason">{_text((answer.reason or "").capitalize())}.</span></div>'
            f'{looked}'
            f'{_alternatives(answer.alternatives, answer.passages, lookup, "Best guesses, below the threshold")}'
            f'</div>')


def error_html(message: str) -> str:
    return f'<div class="dq-answer dq-error"><div class="dq-answer-text">⚠ {_text(message)}</div></div>'


def document_page(doc: Document, start: int | None, end: int | None) -> str:
    """A standalone page with the whole document, the span `text[start:end]` highlighted in place."""
    if start is not None and end is not None and 0 <= start <= end <= len(doc.text):
        body = highlighted(doc.text, start, end).replace('<mark class="dq-span">', '<mark id="answer">', 1)
        where = f"<p class='where'>Highlighted: characters {start:,}–{end:,}" \
                f"{f', page {doc.page_of(start)}' if doc.page_of(start) else ''}.</p>"
    else:
        body, where = _text(doc.text), ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(doc.title)} · docqa</title>
<style>
body {{ font: 16px/1.6 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2937; background: #f8fafc;
       margin: 0; }}
main {{ max-width: 48rem; margin: 2rem auto; background: #fff; padding: 2rem 2.5rem; border: 1px solid #e5e7eb;
        border-radius: 12px; }}
h1 {{ font-size: 1.35rem; line-height: 1.3; margin: 0 0 .25rem; }}
.meta, .where {{ color: #6b7280; font-size: .875rem; margin: 0 0 .25rem; }}
.text {{ white-space: normal; margin-top: 1.25rem; }}
mark {{ background: #fde68a; padding: 0 2px; border-radius: 3px; box-shadow: 0 0 0 2px #f59e0b55; }}
</style></head>
<body><main>
<h1>{_text(doc.title)}</h1>
<p class="meta">Document <code>{escape(doc.id)}</code> · {len(doc.text):,} characters</p>
{where}
<div class="text">{body}</div>
</main></body></html>"""


def documents_table(documents) -> str:
    """The documents panel's list: title (linking to the document view), id, size, passages, file."""
    rows = "".join(
        f'<tr><td><a href="{escape(document_url(d.id))}" target="_blank" rel="noopener">{escape(d.title)}</a></td>'
        f'<td><code>{escape(d.id)}</code></td><td class="num">{d.chars:,}</td><td class="num">{d.passages}</td>'
        f'<td>{escape(d.source.replace(chr(92), "/").rsplit("/", 1)[-1])}</td></tr>'
        for d in documents)
    total = sum(d.chars for d in documents)
    return (f'<div class="dq-docs"><div class="dq-docs-head">{len(documents)} indexed document'
            f'{"s" if len(documents) != 1 else ""}, {total:,} characters</div>'
            f'<table><thead><tr><th>Title</th><th>Id</th><th class="num">Characters</th>'
            f'<th class="num">Passages</th><th>File</th></tr></thead><tbody>{rows}</tbody></table></div>')


CSS = """
.dq-answer { font-size: 15px; line-height: 1.55; }
.dq-answer-text { font-size: 1.15rem; font-weight: 600; margin-bottom: .25rem; }
.dq-abstained .dq-answer-text { color: #92400e; }
.dq-error .dq-answer-text { color: #b91c1c; font-weight: 500; }
.dq-ref { color: #2563eb; font-weight: 500; margin-left: 2px; }
.dq-meta { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; color: #6b7280; font-size: .85rem;
           margin-bottom: .6rem; }
.dq-conf { border-radius: 999px; padding: 1px 10px; font-weight: 600; font-size: .8rem; }
.dq-conf-high { background: #dcfce7; color: #166534; }
.dq-conf-medium { background: #fef9c3; color: #854d0e; }
.dq-conf-low { background: #fee2e2; color: #991b1b; }
.dq-cite { border: 1px solid #e5e7eb; border-radius: 10px; padding: .45rem .75rem; margin: .4rem 0;
           background: #fafafa; }
.dq-cite summary { cursor: pointer; font-size: .9rem; }
.dq-num { display: inline-block; min-width: 1.4rem; height: 1.4rem; line-height: 1.4rem; text-align: center;
          border-radius: 999px; background: #2563eb; color: #fff; font-size: .75rem; font-weight: 700; }
.dq-title { font-weight: 600; }
.dq-where { color: #6b7280; font-size: .8rem; }
.dq-passage { margin: .5rem 0 .35rem; padding-left: .75rem; border-left: 3px solid #93c5fd; color: #374151;
              font-size: .9rem; }
.dq-passage mark, mark.dq-span { background: #fde68a; color: inherit; padding: 0 2px; border-radius: 3px; }
.dq-links { font-size: .8rem; }
.dq-alts { margin-top: .5rem; font-size: .9rem; }
.dq-alts > summary { cursor: pointer; color: #2563eb; }
.dq-alt-text { font-weight: 600; }
.dq-subhead { font-size: .85rem; color: #374151; margin-top: .25rem; }
.dq-reason { color: #6b7280; }
.dq-docs-head { font-weight: 600; margin: .25rem 0 .5rem; }
.dq-docs table { width: 100%; border-collapse: collapse; font-size: .9rem; }
.dq-docs th, .dq-docs td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #e5e7eb;
                           vertical-align: top; }
.dq-docs th { color: #6b7280; font-weight: 600; font-size: .8rem; text-transform: uppercase; }
.dq-docs .num { text-align: right; white-space: nowrap; }
#dq-header h1 { margin-bottom: 0; }
#dq-header p { color: #6b7280; margin-top: .2rem; }
"""
