"""Getting collections in: OpenSea API v2, seed archives, the synthetic demo.

Every source turns its data into :class:`~collections_app.ingest.records.TokenRecord` objects
and writes them through :class:`~collections_app.ingest.upsert.TokenUpserter`; jobs record
their cursor with each committed batch (``ingest.jobs``) so any run can be resumed.
"""
