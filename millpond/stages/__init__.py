"""The pipeline's stages, in order: ingest → transform → check → publish."""
