"""GET /metrics: the collector reading the catalog at each scrape, and its families."""
