"""Test-wide settings: tests import their helper modules (tests/_*.py) by name."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
