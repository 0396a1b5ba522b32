"""Shared worker helpers: configuration loading, progress/result reporting, digests, URIs."""
