"""Cross-service system tests (a regular package, so `tests` never resolves to shared/tests)."""
