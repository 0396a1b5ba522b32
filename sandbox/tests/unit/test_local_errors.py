"""Status bodies of the local control plane match kube-apiserver's, message for message."""

from __future__ import annotations

from drover_sandbox.apiserver.errors import (
    OMIT,
    ApiError,
    Cause,
    already_exists,
    bad_request,
    conflict,
    field_error,
    gone,
    internal,
    invalid,
    method_not_allowed,
    not_found,
    too_many_requests,
    unprocessable,
    unsupported_media_type,
)


def test_not_found_status_names_resource_and_group() -> None:
    status = not_found("drover.dev", "foundationmodels", "x").to_status()
    assert status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'foundationmodels.drover.dev "x" not found',
        "reason": "NotFound",
        "details": {"name": "x", "group": "drover.dev", "kind": "foundationmodels"},
        "code": 404,
    }


def test_core_group_resources_are_not_qualified() -> None:
    err = not_found("", "configmaps", "cm")
    assert err.message == 'configmaps "cm" not found'
    assert "group" not in err.details


def test_already_exists_is_409_with_kube_message() -> None:
    err = already_exists("drover.dev", "inferenceservices", "bot")
    assert (err.code, err.reason) == (409, "AlreadyExists")
    assert err.message == 'inferenceservices.drover.dev "bot" already exists'


def test_conflict_uses_the_optimistic_lock_message() -> None:
    err = conflict("drover.dev", "foundationmodels", "x")
    assert (err.code, err.reason) == (409, "Conflict")
    assert err.message == (
        'Operation cannot be fulfilled on foundationmodels.drover.dev "x": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )


def test_invalid_with_one_cause_is_unbracketed() -> None:
    cause = field_error("FieldValueRequired", "spec.source.uri")
    err = invalid("drover.dev", "FoundationModel", "x", [cause])
    assert err.code == 422 and err.reason == "Invalid"
    assert (
        err.message == 'FoundationModel.drover.dev "x" is invalid: spec.source.uri: Required value'
    )
    assert err.details == {
        "name": "x",
        "group": "drover.dev",
        "kind": "FoundationModel",
        "causes": [
            {
                "reason": "FieldValueRequired",
                "message": "Required value",
                "field": "spec.source.uri",
            }
        ],
    }


def test_invalid_with_several_causes_is_bracketed_and_deduplicated() -> None:
    causes = [
        field_error("FieldValueRequired", "spec.a"),
        field_error("FieldValueInvalid", "spec.b", -1, "must be positive"),
        field_error("FieldValueRequired", "spec.a"),
    ]
    err = invalid("drover.dev", "FoundationModel", "x", causes)
    assert err.message == (
        'FoundationModel.drover.dev "x" is invalid: '
        "[spec.a: Required value, spec.b: Invalid value: -1: must be positive]"
    )
    assert len(err.details["causes"]) == 3


def test_field_error_bodies_follow_go_formatting() -> None:
    assert field_error("FieldValueInvalid", "f", "x", "bad").message == 'Invalid value: "x": bad'
    assert field_error("FieldValueInvalid", "f", 1.5, "bad").message == "Invalid value: 1.5: bad"
    assert field_error("FieldValueInvalid", "f", 2.0, "").message == "Invalid value: 2"
    assert field_error("FieldValueInvalid", "f", True, "").message == "Invalid value: true"
    assert field_error("FieldValueInvalid", "f", None, "").message == 'Invalid value: "null"'
    assert field_error("FieldValueForbidden", "f", "x", "no").message == "Forbidden: no"
    assert field_error("FieldValueTooMany", "f", 4, "must have at most 3 items").message == (
        "Too many: 4: must have at most 3 items"
    )
    assert field_error("FieldValueNotSupported", "f", OMIT, "x").message == "Unsupported value: x"


def test_cause_renders_as_field_and_message() -> None:
    assert str(Cause("FieldValueRequired", "Required value", "spec.x")) == "spec.x: Required value"


def test_simple_statuses_have_kube_codes_and_reasons() -> None:
    assert (bad_request("nope").code, bad_request("nope").reason) == (400, "BadRequest")
    assert (gone("too old resource version: 1 (5)").code, gone("x").reason) == (410, "Expired")
    assert method_not_allowed().code == 405
    assert unsupported_media_type("application/json").to_status()["code"] == 415
    assert internal("boom").message == "Internal error occurred: boom"


def test_too_many_requests_sets_retry_after() -> None:
    err = too_many_requests(3)
    assert (err.code, err.reason) == (429, "TooManyRequests")
    assert err.headers == {"Retry-After": "3"}
    assert err.details == {"retryAfterSeconds": 3}
    assert err.message == "Too many requests, please try again later."


def test_unsupported_media_type_lists_accepted_types() -> None:
    err = unsupported_media_type("application/json-patch+json, application/merge-patch+json")
    assert err.message == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json"
    )


def test_unprocessable_is_kubes_generic_422() -> None:
    err = unprocessable("testing value /a failed: test failed")
    assert err.to_status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server rejected our request due to an error in our request",
        "reason": "Invalid",
        "details": {},
        "code": 422,
    }
    assert err.cause == "testing value /a failed: test failed"


def test_api_error_is_an_exception() -> None:
    assert isinstance(bad_request("x"), Exception)
    assert isinstance(bad_request("x"), ApiError)
