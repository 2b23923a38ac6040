"""Seeding and RNG state capture for deterministic, exactly resumable runs."""

from __future__ import annotations

import torch


def seed_all(seed: int) -> None:
    """Seed torch's global CPU (and CUDA) RNGs; used before building the networks."""
    torch.manual_seed(seed)


def rng_state(generator: torch.Generator) -> dict:
    """Every RNG state the loop depends on, as tensors (loadable with weights_only)."""
    state = {"torch_cpu": torch.get_rng_state(), "generator": generator.get_state()}
    if torch.cuda.is_available():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(generator: torch.Generator, state: dict) -> None:
    torch.set_rng_state(state["torch_cpu"])
    generator.set_state(state["generator"])
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])
