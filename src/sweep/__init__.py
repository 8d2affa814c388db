"""The sweep: `python -m src.sweep` (see __main__.py).

The package's one error, raised by every step from the definition to the design, is `SweepError`.
"""


class SweepError(ValueError):
    """A sweep definition is wrong; the message names the dimension or setting."""
