"""Tests of the live-event transport: the Redis pub/sub backend and bounded broadcasts."""
