"""Reusable test helpers (local servers, fakes) shared across the test suite."""
