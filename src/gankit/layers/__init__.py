"""Shared network blocks (spectral normalisation helpers, maxout, ...)."""
