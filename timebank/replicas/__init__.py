"""Read replicas (issue 13): reads that tolerate lag answered by PostgreSQL streaming-replication
standbys, never staler than the caller's own last write through whichever worker process or
instance of the service served it (positions.py), and the primary whenever in doubt."""
