"""Labelling engines beyond the in-process one: ``ray``."""
