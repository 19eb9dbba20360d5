"""Rindle's test suite."""
