"""Admin → More → Audit trail: the account's events, filtered, paged and exported."""
