"""harness-example-backend: a third-party training method for harness (DoRA through peft)."""

__version__ = "0.1.0"
