"""Autotuning: search spaces from the passes' knobs, cost model, measurement, database."""
