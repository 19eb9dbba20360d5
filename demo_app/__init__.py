"""Cohort, Rindle's demo app: avatars uploaded straight to storage, verified and attached."""
