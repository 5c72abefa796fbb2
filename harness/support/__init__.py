"""Low-level helpers every layer may use: atomic writes, content hashes, locks, cache paths,
signals, step progress files. They import nothing of the harness but its errors."""
