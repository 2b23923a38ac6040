"""Small shared utilities: atomic file writes, image grids, seeding."""
