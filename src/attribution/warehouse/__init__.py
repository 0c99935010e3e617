"""The warehouse: engines, dialects, every table definition, schema checks, bulk reads and loads, the write
lock, copying the input tables (``copy-db``) and Redshift's ``COPY`` from object storage."""
