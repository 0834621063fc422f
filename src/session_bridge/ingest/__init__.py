"""The ingest pipeline: prepare (decode, map, enrich, fold), in map worker processes or in
the bridge process, then the group-commit write."""
