"""harness-example-benchmark: a third-party benchmark plugin for harness (example-vqa)."""

__version__ = "0.1.0"
