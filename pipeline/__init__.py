"""repotune: turn a code repository into a sentence-embedding model of its own, behind a governance gate."""

__version__ = "0.1.0"
