"""Conversations: sessions, messages, deduplication records and CSAT feedback."""
