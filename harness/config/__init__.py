"""From files and flags to validated specs: the registry, protocol assets, matrix axes and the
experiment's tables."""
