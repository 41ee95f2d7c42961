"""The JSON API for device apps, /api/v1 (bearer tokens, never cookies)."""
