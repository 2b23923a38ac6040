"""The one training loop, its state, and checkpoints."""
