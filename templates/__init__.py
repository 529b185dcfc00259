"""Jinja templates and VM-side scripts shipped inside the wheel as ``generator.templates``."""
