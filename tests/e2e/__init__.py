"""Browser end-to-end tests (Debian chromium driven by playwright-core)."""
