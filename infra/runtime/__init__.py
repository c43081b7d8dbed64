"""What a long-running process tunes and counts: the garbage collector, the work gate for request threads, and Prometheus counters."""
