"""Asking judges: the persistent judge cache, the batched client with its re-asks, and the
prices that turn a judge's token usage into dollars."""
