"""The service's own rules for schemathesis (tests/conformance.rs loads this file as its hooks).

The built-in checks hold an answer to its status, content type, headers and schema; these add
what only this document states: which problem codes each operation may answer
(`x-problem-codes`, each under the status whose description names it), and that the run
reached every verification operation's success at least once (so a run that never got past
`not_found` fails rather than passing empty).
"""

import json

import schemathesis

PROBLEM_JSON = "application/problem+json"
# Answered for any route by HTTP itself, for a method the route does not have (`Allow` lists it).
METHOD_NOT_ALLOWED = "method_not_allowed"


def _media_type(response):
    values = response.headers.get("content-type") or response.headers.get("Content-Type") or [""]
    value = values[0] if isinstance(values, list) else values
    return value.split(";")[0].strip().lower()


@schemathesis.check
def problem_codes_are_documented(ctx, response, case):
    """A problem's code is one its operation lists, under the status it was answered with."""
    if response.status_code < 400:
        return None
    if _media_type(response) != PROBLEM_JSON:
        raise AssertionError(f"a {response.status_code} must be {PROBLEM_JSON}, not {_media_type(response)!r}")
    problem = json.loads(response.content)
    code = problem.get("code")
    if problem.get("type") != f"urn:otp:problem:{code}":
        raise AssertionError(f"type {problem.get('type')!r} is not urn:otp:problem:{code}")
    if problem.get("status") != response.status_code:
        raise AssertionError(f"status member {problem.get('status')!r} is not the HTTP status {response.status_code}")
    sent_method = (response.request.method or "").upper()
    if code == METHOD_NOT_ALLOWED and response.status_code == 405 and sent_method != case.operation.method.upper():
        return None
    operation = case.operation.definition.raw
    listed = operation.get("x-problem-codes") or []
    label = case.operation.label
    if code not in listed:
        raise AssertionError(f"{label} answered {code!r}, which its x-problem-codes {listed} do not list")
    documented = operation.get("responses", {}).get(str(response.status_code), {})
    if f"`{code}`" not in documented.get("description", ""):
        raise AssertionError(f"{label} answered {code!r} as {response.status_code}, which does not list it")
    return None


@schemathesis.check
class EveryVerificationOperationSucceeded:
    """Each verification operation answered a 2xx at least once during the run."""

    def __init__(self):
        self.tested = set()
        self.succeeded = set()

    def after_response(self, ctx, response, case):
        if case.operation.path.startswith("/v1/verifications"):
            label = case.operation.label
            self.tested.add(label)
            if 200 <= response.status_code < 300:
                self.succeeded.add(label)

    def after_run(self, ctx):
        never = sorted(self.tested - self.succeeded)
        if never:
            raise AssertionError("never answered a 2xx, so the run never reached their logic: " + ", ".join(never))
