"""Serve layer: the Ray Serve application of an InferenceService (router + one model deployment
per version); `drover_workers.serve.app:build_app` is its import path. See README.md here."""
