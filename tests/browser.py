"""Browser tests drive Debian's Chromium through Playwright with these flags (no GPU, no
background traffic: nothing outside the machine is reachable)."""

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
