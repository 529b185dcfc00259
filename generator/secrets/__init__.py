"""Secret sources: each module resolves one kind of reference into a SecretValue."""
