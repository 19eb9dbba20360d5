"""Rindle's HTTP layer for Starlette apps."""
