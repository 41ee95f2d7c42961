"""Admin → More → Settings › Provisioning: the account's SCIM tokens (create, shown once, revoke)."""
