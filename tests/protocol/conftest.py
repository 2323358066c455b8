"""Shared setup for the protocol tests.

The test modules import their builders from ``protocol_builders`` next to this file. The
default ``prepend`` import mode already puts this folder on ``sys.path``; the guard below
keeps that true under ``--import-mode=importlib`` too.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
