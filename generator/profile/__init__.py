"""Profile stage: YAML in, a validated :class:`~generator.profile.model.Profile` out."""
