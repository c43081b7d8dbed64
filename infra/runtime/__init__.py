"""What a long-running process runs beside its work: the garbage collector's settings, the work gate for
request threads, Prometheus counters, and the scheduler thread that drives the market clock."""
