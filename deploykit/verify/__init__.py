"""Parity (reference vs engine) and comparison metrics."""
