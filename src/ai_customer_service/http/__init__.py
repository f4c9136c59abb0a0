"""HTTP plumbing shared by every router: error envelope, request ids, access log, metrics."""
