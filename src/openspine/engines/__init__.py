"""Other systems' models run on openspine's reading and outputs (``--engine``).

Each engine imports its own package lazily, on first use: importing openspine never imports them.
"""

from __future__ import annotations

ENGINES = ("openspine", "spinenet")  # what --engine accepts; "openspine" is the built-in pipeline

__all__ = ["ENGINES"]
