"""Browser tests drive Debian's Chromium through Playwright with these flags (no GPU, no
background traffic: nothing outside the machine is reachable).

Set NFF_SCREENSHOT_DIR to keep a full-page screenshot of each page the tests look at
(:func:`keep_screenshot`).
"""

import os
from pathlib import Path

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


def keep_screenshot(page, name: str) -> Path | None:
    """A full-page screenshot ``name`` (.png) in NFF_SCREENSHOT_DIR, when it is set."""
    folder = os.environ.get("NFF_SCREENSHOT_DIR")
    if not folder:
        return None
    path = Path(folder) / (name if name.endswith(".png") else f"{name}.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def poll(page, script, timeout=20):
    """page.wait_for_function needs eval, which the CSP forbids: evaluate until true."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.evaluate(script):
            return
        time.sleep(0.2)
    raise AssertionError(f"never true: {script}")


def watch_errors(page) -> list[str]:
    """Page errors, console errors (CSP refusals among them) and failed responses, as they come.
    Failed loads are checked by URL: the admin has no favicon, which the browser asks for."""
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "console",
        lambda m: (
            m.type == "error" and "Failed to load resource" not in m.text and errors.append(m.text)
        ),
    )
    page.on(
        "response",
        lambda r: (
            r.status >= 400
            and not r.url.endswith("/favicon.ico")
            and errors.append(f"{r.status} {r.url}")
        ),
    )
    return errors


def log_in(page, base_url, next_url, username="boss", password="pw-boss-123"):  # noqa: S107
    """Through the admin's login form, landing on ``next_url``."""
    page.goto(f"{base_url}/admin/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_load_state()
