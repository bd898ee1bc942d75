"""Screenshot the chat answering a question: `python -m ui.screenshot --index indexes/seeds --out docs/chat.png`.

Starts the app on a free local port, asks in headless Chromium (Debian's /usr/bin/chromium), and saves
the page. Used for the README's picture; rerun it when the reader changes.
"""

from __future__ import annotations

import argparse
import os
import socket

from qa.assistant import Assistant
from qa.config import Config
from ui.app import launch

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", default="indexes/seeds")
    parser.add_argument("--out", default="docs/chat.png")
    parser.add_argument("--question", default="Who is the CSTO Secretary General?")
    parser.add_argument("--threshold", help="abstention threshold to set in the page (default: calibrated)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = launch(Assistant.load(args.index, Config()), "127.0.0.1", port, block=False, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
            page.goto(demo.local_url)
            if args.threshold is not None:
                box = page.locator("#threshold input[type=number]")
                box.fill(args.threshold)
                box.press("Enter")
            page.locator("#question textarea").fill(args.question)
            page.locator("#question textarea").press("Enter")
            page.locator("#chat .dq-answer:not(:has-text('Reading the documents'))").last.wait_for(timeout=120_000)
            page.wait_for_timeout(500)
            # Show the conversation from its start (the chat scrolls to its newest line).
            page.evaluate("""() => document.querySelectorAll('#chat *').forEach(
                e => { if (e.scrollHeight > e.clientHeight + 4) e.scrollTop = 0; })""")
            page.wait_for_timeout(300)
            os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    finally:
        demo.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
