"""Tests of promotion processors and variant building."""
