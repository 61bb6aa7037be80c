"""The durable outbox, the worker that delivers it, idempotency keys, conflict handling."""
