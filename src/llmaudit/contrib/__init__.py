"""Integrations that live inside another framework: ``contrib.django`` (an installable Django app)."""
