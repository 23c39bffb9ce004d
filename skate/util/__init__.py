"""Utilities on the public API (drop-ins, scheduling strategies)."""

from skate.core.api import list_named_actors

__all__ = ["list_named_actors"]
