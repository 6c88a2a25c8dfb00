"""Labelling and training backends, each a plugin module of its own."""
