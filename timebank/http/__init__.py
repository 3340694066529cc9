"""HTTP plumbing shared by every domain: request context, problems, paging, idempotency."""
