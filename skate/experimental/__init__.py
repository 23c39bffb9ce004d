"""Interfaces libraries use that are not part of the stable user API (as Ray's)."""
