"""Reproduced benchmark protocols: `gankit bench mixture` and `gankit bench stacked-mnist`."""
