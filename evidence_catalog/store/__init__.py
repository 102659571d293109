"""Storage adapters: the content-addressed blob store and the catalog database."""
