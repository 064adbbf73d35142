"""The published netdev-family model of softena devices: one spec table drives
encoding, printing, metrics and the live view (see spec.py)."""
