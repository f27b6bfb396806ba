"""Customers: profiles, organisations, consent, timeline, traits, segments."""
