"""The API answers as its OpenAPI description says (schemathesis, a few examples per operation)."""
import contextvars

import schemathesis
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from schemathesis import checks

from portal.extensions import db
from tests.builders import make_group
from tests.builders import make_taskstream
from tests.builders import make_user
from tests.web.test_api import api_sign_in

EXAMPLES = 10


def in_own_context(func, *args, **kwargs):
    """Run a request as a separate client would: not inside the test's app context."""
    db.session.commit()
    return contextvars.Context().run(func, *args, **kwargs)


def test_the_api_answers_as_its_openapi_description_says(app, client, account):
    member = make_user(account)
    group = make_group(account, "Drivers", [member])
    make_taskstream(account, "Delivery round", [("Deliver", group.id)])
    token = api_sign_in(client, member.user.email)
    schema = in_own_context(schemathesis.openapi.from_wsgi, "/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    # Logging out ends the token the other operations use, so it goes last.
    operations.sort(key=lambda op: op.method.upper() == "DELETE")
    assert {op.label for op in operations} >= {
        "POST /sessions", "DELETE /sessions/current", "GET /me"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            in_own_context(
                case.call_and_validate,
                headers={"Authorization": f"Bearer {token}"},
                # A well-formed sign-in with made-up credentials is rightly refused.
                excluded_checks=[checks.positive_data_acceptance],
            )

        check()
