"""Inbound channel messages: signature check, strict parsing, exactly-once ingest."""
