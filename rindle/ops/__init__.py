"""Operator tooling: doctor, runtime status, clean-up, reconciliation and owner erasure."""

#: Where ``rindle doctor`` writes its probe objects; reconciliation treats leftovers there
#: as orphans.
PROBE_PREFIX = "_rindle_doctor/"
