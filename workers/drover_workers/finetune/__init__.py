"""Drover."""
