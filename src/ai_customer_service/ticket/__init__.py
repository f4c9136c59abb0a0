"""Tickets: the human half of customer service."""
