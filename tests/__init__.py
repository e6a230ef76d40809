"""geventsio's test suite (a package so that ``tests.support`` imports from any test)."""
