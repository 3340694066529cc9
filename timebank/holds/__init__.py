"""Holds domain."""
