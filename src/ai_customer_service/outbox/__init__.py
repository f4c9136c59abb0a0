"""The transactional outbox: events written with the change that causes them, delivered by a worker.

``events.emit`` adds an event to the caller's transaction; ``worker.OutboxWorker`` claims due events,
delivers them signed over HTTP outside any transaction, and records every attempt. See
``docs/callbacks.md``.
"""
