"""The local model hub (development and tests only): the Hugging Face hub's HTTP file layout on
loopback, holding tiny models and data sets built locally, so `hf://` sources run for real here.
"""
