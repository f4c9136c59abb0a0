"""Back-office principals (agents, supervisors, admins) and bearer-token authentication."""
