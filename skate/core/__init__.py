"""Skate's runtime. Nothing here imports a library (tune, serve, ...)."""
