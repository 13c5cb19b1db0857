"""The governance gate: one check per file; see policy.yaml and conftest.py."""
