"""Drover."""

# The release version: pyproject.toml's and the chart's appVersion agree with it (a test checks);
# the default image tags are made from it.
__version__ = "0.1.0"
