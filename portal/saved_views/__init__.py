"""Saved views: named queries of the Users and Groups lists, beside their tabs."""
