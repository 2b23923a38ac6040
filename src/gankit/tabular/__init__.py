"""Tabular data for GANs: tables read from CSV with typed columns (`table`), CTGAN's
encoding (`transform`), the conditional vector and training-by-sampling (`sampler`)."""
