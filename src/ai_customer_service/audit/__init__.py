"""The audit trail: one row per state change, written in the transaction of the change."""
