"""Fixtures of the dialer's end-to-end tests (helpers in dialerworld.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from dialerworld import spawn  # noqa: F401  (fixture)
