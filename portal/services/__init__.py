"""The service layer: every business rule, audit event and outbox e-mail lives here.

The contract of a service function:
- it takes the acting membership first (``actor``: account scope and audit), then plain values;
- it looks up everything through ``portal.services.scope`` (another account's object is NotFound);
- it checks before it writes, so a ServiceError leaves nothing pending;
- it writes the audit and outbox rows with the change, then commits once, last.
Views, CLI commands and the JSON API call the same functions.
"""
