"""Browser tests: the examples in headless Chromium, driven by Playwright."""
