"""Tests of delivery: signing, URLs and response headers."""
