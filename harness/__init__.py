"""harness: train-then-evaluate matrices for LLaVA-style models, with cost beside every score."""

__version__ = "0.1.0"
