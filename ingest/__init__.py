"""The dlt sources, one package per source (``mongodb``, ``kafka``), in the style of dlt's verified sources.

They import dlt, their client library and their own helpers, never the application: the ingest
stage (``millpond/stages/ingest.py``) configures and runs them.
"""
