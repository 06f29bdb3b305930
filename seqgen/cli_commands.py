"""Subcommands beyond `prepare`: train, sample, evaluate, recipe (filled in as models land)."""

ADDERS: list = []
