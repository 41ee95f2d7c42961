"""SCIM 2.0 provisioning for identity providers, /scim/v2 (bearer tokens, never cookies)."""
