"""Prosody kernels, per-person baselines and the affect model (later issues)."""
