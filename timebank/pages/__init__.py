"""Pages for people (issue 11): server-rendered, Chinese first, large and plain, no JavaScript needed.

Every action calls the same service functions as the API; no page reaches the database another way.
"""
