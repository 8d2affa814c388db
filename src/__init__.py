"""deep-interest-lab: sweeps over the Deep Interest Network family (DIN, DIEN)."""
