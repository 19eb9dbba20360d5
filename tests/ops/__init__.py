"""Tests of the operator tooling."""
