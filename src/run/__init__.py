"""The run: one tracked training (loop, run logger, attention probe, optimisers, process runtime)."""
