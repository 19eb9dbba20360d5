"""Tests of rindle.model."""
