"""Operator tooling: doctor, runtime status and upload clean-up."""
