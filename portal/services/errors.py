"""The one domain error type."""


class ServiceError(Exception):
    """A rule said no; ``message`` is shown to the person, ``field`` names the form field."""

    status = 422

    def __init__(self, message: str, field: str | None = None, *, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if status is not None:
            self.status = status
        # Further errors of the same check, each with its field: a form shows them all at once.
        self.others: list[ServiceError] = []

    @property
    def all(self) -> list["ServiceError"]:
        """This error and the others found with it."""
        return [self, *self.others]

    @staticmethod
    def raise_all(errors: list["ServiceError"]) -> None:
        """Raise the first of ``errors`` carrying the rest; nothing when there are none."""
        if errors:
            first = errors[0]
            first.others = errors[1:]
            raise first


class NotFound(ServiceError):
    """Absent, or in another account: the two are indistinguishable on purpose."""

    status = 404

    def __init__(self, message: str = "Not found."):
        super().__init__(message)


class OutOfScope(NotFound):
    """An id that names nothing in the actor's account: absent or another account's (the two
    answer alike). Raised by services/scope; the edge records the refusal (audit.access_refused)
    with the route and address only it knows."""

    def __init__(self, kind: str, ident: object):
        super().__init__()
        self.kind = kind
        self.ident = str(ident)[:64]


class Forbidden(ServiceError):
    status = 403


class Conflict(ServiceError):
    """The change would break a rule about the current state (e.g. the last admin)."""

    status = 409
