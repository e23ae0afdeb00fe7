"""Handcrafted features (being written)."""
