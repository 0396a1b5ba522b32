"""Serve layer: the Ray Serve applications of an InferenceService (a router application plus one
application per version); `drover_workers.serve.app:build_router` and `:build_model` are their
import paths. See README.md here."""
