"""Monthly reports: a community's figures of a month, per grid and per service type (JSON and CSV)."""
