"""The sweep: `python -m src.sweep` (see __main__.py)."""
