"""The workflow engine: phases, hooks, concurrency, timeouts, cancellation and the result cache."""
