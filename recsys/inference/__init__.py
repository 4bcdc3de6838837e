"""Offline parts of the inference pipeline: the catalogue's embeddings and index (serving is in recsys.serving)."""
