"""`seqgen bench`: presets, the timing runner, the machine's ceilings (roofline) and the report."""
