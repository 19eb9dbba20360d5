"""Shared test helpers: image bytes, runtimes, servers."""
