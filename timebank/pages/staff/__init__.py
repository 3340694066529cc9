"""The coordinator's pages (/staff…): today's work, members, crediting, requests, sign-in cards."""
