"""Shared value rules: what a registry host, an image reference, a service-account key
and a pasted key look like, and did-you-mean.  One place per rule, used by profile,
secrets, targets, doctor and verify alike; this package imports only the standard
library (and itself), so every layer may look down on it.
"""
