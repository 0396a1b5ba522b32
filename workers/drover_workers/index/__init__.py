"""index worker: chunks documents, embeds them with an embedding model and writes a versioned
faiss index (`python -m drover_workers.index`); `store.IndexReader` reads it back for serving."""
