"""Backends: scheduled IR -> source text for a target (C today)."""
