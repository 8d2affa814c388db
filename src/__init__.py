"""deep-interest-lab: sweeps over the Deep Interest Network family (DIN, DIEN)."""

from src.run import runtime as _runtime  # noqa: F401  (TensorFlow's native start-up lines off the terminal)
