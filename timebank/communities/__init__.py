"""Communities domain."""
