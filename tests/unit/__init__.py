"""Unit tests: no I/O, in-memory fakes only."""
