"""Test tooling: the passes `make test` runs and the CPU profile of a command; not part of the product."""
