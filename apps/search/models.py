"""Search indexing on PostgreSQL, optional Elasticsearch (layer 4)."""
