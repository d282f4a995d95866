"""spruce: run a Python project's quality workflow and watch it live on a durable event bus."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
