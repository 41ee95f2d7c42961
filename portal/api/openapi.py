"""The OpenAPI 3.0 description of /api/v1, written by hand and tested against the API."""


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(schema_name: str, description: str) -> dict:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
        },
    }


_ID = {"type": "integer", "minimum": 1}
_TIME = {"type": "string", "format": "date-time"}
_NAMED = {
    "type": "object",
    "required": ["id", "name", "account_id"],
    "properties": {"id": _ID, "name": {"type": "string"}, "account_id": _ID},
    "additionalProperties": False,
}

_TASKSTREAM = {
    "type": "object",
    "required": ["id", "name", "account_id", "steps"],
    "properties": {
        "id": _ID,
        "name": {"type": "string"},
        "account_id": _ID,
        "steps": {
            "type": "array",
            "description": "The steps assigned to one of the person's groups, in order.",
            "items": {
                "type": "object",
                "required": ["id", "name", "position"],
                "properties": {"id": _ID, "name": {"type": "string"}, "position": {"type": "integer"}},
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}

SPEC = {
    "openapi": "3.0.3",
    "info": {
        "title": "Participants Portal API",
        "version": "1",
        "description": (
            "JSON for device apps. Sign in with POST /sessions to get a bearer token bound to a "
            "device, then send `Authorization: Bearer <token>`. Signing in on more devices than "
            "the person's device limit logs out the one signed in first; its next request "
            "gets 401 `session_ended` with the reason. Request bodies must be application/json "
            "(415 otherwise). Every error is `{\"error\": {\"code\", \"message\"}}` with a "
            "stable code."
        ),
    },
    "servers": [{"url": "/api/v1"}],
    "paths": {
        "/sessions": {
            "post": {
                "operationId": "createSession",
                "summary": "Sign in from an app and get a bearer token for this device",
                "security": [],
                "description": (
                    "Two steps for a person with a second factor: the first call (e-mail and "
                    "password) answers 401 `second_factor_required` with a `challenge_id`; a "
                    "second call with `challenge_id` and `code` (six digits from the "
                    "authenticator app, or a recovery code) within 5 minutes creates the "
                    "device. Wrong codes count toward the same per-person throttle as wrong "
                    "passwords; a code is accepted once."
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"anyOf": [
                                {"$ref": "#/components/schemas/SessionRequest"},
                                {"$ref": "#/components/schemas/SecondFactorRequest"},
                            ]}
                        }
                    },
                },
                "responses": {
                    "201": _json("Session", "Signed in; the token is shown only here."),
                    "400": _error("The body is not a JSON object (`invalid_json`)."),
                    "401": _error("Wrong e-mail or password, or throttled "
                                  "(`invalid_credentials`; one message for every case); the "
                                  "password was right and a second factor is needed "
                                  "(`second_factor_required`, with `challenge_id`); the "
                                  "challenge is unknown, used or expired (`invalid_challenge`); "
                                  "the code is wrong or the person is throttled "
                                  "(`invalid_code`)."),
                    "403": _error("The password no longer fits the policy "
                                  "(`password_change_required`): change it in a browser first; "
                                  "or an account requires a second factor the person has not "
                                  "added yet (`second_factor_setup_required`): add one in a "
                                  "browser first."),
                    "415": _error("The body is not application/json."),
                    "422": _error("A field is missing or not valid (`invalid_request`, "
                                  "with `fields`)."),
                    "429": _error("Too many sign-ins from this address."),
                },
            }
        },
        "/sessions/current": {
            "delete": {
                "operationId": "deleteSession",
                "summary": "Log out this device",
                "responses": {
                    "204": {"description": "Logged out; the token no longer works."},
                    "401": _error("No live token (`unauthorized` or `session_ended`)."),
                    "415": _error("A body that is not application/json was sent."),
                },
            }
        },
        "/me": {
            "get": {
                "operationId": "getMe",
                "summary": "The person's profile, accounts, groups and taskstreams",
                "responses": {
                    "200": _json("Me", "The signed-in person."),
                    "401": _error("No live token (`unauthorized` or `session_ended`)."),
                    "403": _error("An account of the person now requires a second factor they "
                                  "have not added (`second_factor_setup_required`): add one in "
                                  "a browser; only logging out works until then."),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "getOpenAPI",
                "summary": "This description",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "SessionRequest": {
                "type": "object",
                "required": ["email", "password", "device_id", "device_name", "kind",
                             "app_version"],
                "properties": {
                    "email": {"type": "string", "maxLength": 254, "example": "ana@example.com"},
                    "password": {"type": "string", "maxLength": 256},
                    "device_id": {"type": "string", "maxLength": 120,
                                  "description": "The app's own stable identifier of the device."},
                    "device_name": {"type": "string", "maxLength": 120, "example": "Front desk"},
                    "kind": {"type": "string", "enum": ["ipad", "iphone", "app"]},
                    "app_version": {"type": "string", "maxLength": 40, "example": "4.2.1"},
                },
            },
            "SecondFactorRequest": {
                "type": "object",
                "required": ["challenge_id", "code"],
                "properties": {
                    "challenge_id": {"type": "string", "maxLength": 100,
                                     "description": "From the 401 `second_factor_required`."},
                    "code": {"type": "string", "maxLength": 64, "example": "123456",
                             "description": "Six digits from the authenticator app, or a "
                                            "recovery code."},
                },
            },
            "Device": {
                "type": "object",
                "required": ["id", "name", "kind", "app_version", "created_at", "last_seen_at",
                             "expires_at"],
                "properties": {
                    "id": _ID,
                    "name": {"type": "string"},
                    "kind": {"type": "string", "enum": ["web", "ipad", "iphone", "app"]},
                    "app_version": {"type": "string", "nullable": True},
                    "created_at": _TIME,
                    "last_seen_at": _TIME,
                    "expires_at": _TIME,
                },
                "additionalProperties": False,
            },
            "Session": {
                "type": "object",
                "required": ["token", "token_type", "device"],
                "properties": {
                    "token": {"type": "string", "minLength": 43},
                    "token_type": {"type": "string", "enum": ["Bearer"]},
                    "device": {"$ref": "#/components/schemas/Device"},
                },
                "additionalProperties": False,
            },
            "Me": {
                "type": "object",
                "required": ["id", "name", "email", "phone", "accounts", "groups", "taskstreams",
                             "device"],
                "properties": {
                    "id": _ID,
                    "name": {"type": "string"},
                    "email": {"type": "string", "format": "email"},
                    "phone": {"type": "string", "nullable": True},
                    "accounts": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["id", "name", "role"],
                            "properties": {
                                "id": _ID,
                                "name": {"type": "string"},
                                "role": {"type": "string", "enum": ["member", "admin"]},
                            },
                            "additionalProperties": False,
                        },
                    },
                    "groups": {"type": "array", "items": _NAMED},
                    "taskstreams": {"type": "array", "items": _TASKSTREAM},
                    "device": {"$ref": "#/components/schemas/Device"},
                },
                "additionalProperties": False,
            },
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                            "fields": {
                                "type": "object",
                                "additionalProperties": {
                                    "type": "array", "items": {"type": "string"}
                                },
                            },
                            "challenge_id": {
                                "type": "string",
                                "description": "With `second_factor_required`: send it back "
                                               "with the code.",
                            },
                        },
                        "additionalProperties": False,
                    }
                },
                "additionalProperties": False,
            },
        },
    },
    "security": [{"bearer": []}],
}
