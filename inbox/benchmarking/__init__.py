"""Benchmarks run by management commands: data builders and timers, never imported by the app."""
