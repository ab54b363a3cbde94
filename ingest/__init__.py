"""dlt ingestion: one folder per source (``mongodb``, ``kafka``) and the pipeline that runs them."""
