"""fetch worker: copies a model's weights from hf://, s3://, pvc:// or file:// into the cache,
atomically and resumably, and records a content digest (`python -m drover_workers.fetch`)."""
