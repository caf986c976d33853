"""Preprocessing kernel."""
