"""Installing phoneprov on an appliance: `phoneprov setup` (setup.py)."""
