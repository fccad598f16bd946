"""Compiled fast paths (optional: each falls back to the pure-PyTorch reference)."""
