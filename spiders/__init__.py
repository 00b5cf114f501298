"""Spiders: one per platform, made into one per source by the registry. They only navigate."""
