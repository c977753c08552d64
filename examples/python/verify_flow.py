#!/usr/bin/env python3
"""The whole verification flow against `otp serve --sandbox`, as a Python backend would run it.

Standard library only (urllib.request, json): no pip install, no virtualenv; it runs on any
python3 (3.8 or later).

    python3 verify_flow.py BASE_URL API_KEY SANDBOX_URL [MOBILE]

or with OTP_BASE_URL, OTP_API_KEY, OTP_SANDBOX_URL (and OTP_MOBILE) in the environment.
Exits 0 when every step answered as expected, 1 with a message on stderr otherwise.
"""

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

# Loopback only: never route these requests through an HTTP(S)_PROXY from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Deviation(Exception):
    pass


def config():
    args = sys.argv[1:]
    if len(args) > 4:
        raise Deviation("usage: verify_flow.py BASE_URL API_KEY SANDBOX_URL [MOBILE]")
    names = ["OTP_BASE_URL", "OTP_API_KEY", "OTP_SANDBOX_URL", "OTP_MOBILE"]
    values = [args[i] if i < len(args) else os.environ.get(name, "") for i, name in enumerate(names)]
    if not values[3]:
        values[3] = "9876543210"
    missing = [name for name, value in zip(names, values) if not value]
    if missing:
        raise Deviation(
            "missing " + ", ".join(missing)
            + " (usage: verify_flow.py BASE_URL API_KEY SANDBOX_URL [MOBILE], or set OTP_BASE_URL, "
            "OTP_API_KEY, OTP_SANDBOX_URL)"
        )
    base, key, sandbox, mobile = values
    return base.rstrip("/"), key, sandbox.rstrip("/"), mobile


def call(method, url, key=None, body=None):
    """One request: (HTTP status, Content-Type, parsed JSON body). 4xx/5xx are answers too."""
    headers = {"Accept": "application/json"}
    data = None
    if key is not None:
        headers["Authorization"] = "Bearer " + key
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with OPENER.open(request, timeout=30) as response:
            status, content_type, raw = response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        status, content_type, raw = error.code, error.headers.get("Content-Type", ""), error.read()
    except (urllib.error.URLError, OSError) as error:
        raise Deviation(f"{method} {url}: no answer: {error}") from error
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except ValueError as error:
        raise Deviation(f"{method} {url}: HTTP {status}, body is not JSON: {raw[:300]!r}") from error
    return status, content_type, parsed


def expect(condition, message, answer):
    if not condition:
        raise Deviation(f"{message}; got {json.dumps(answer)}")


def main():
    base, key, sandbox, mobile = config()

    # 1. Start a verification: the service sends the OTP through the (sandbox) gateway.
    start = {"gateway": "phonepe", "to": mobile, "client_ip": "203.0.113.7"}
    status, _, body = call("POST", base + "/v1/verifications", key, start)
    expect(status == 201, f"start: expected HTTP 201, got {status}", body)
    expect(body.get("status") == "pending", "start: expected status pending", body)
    vid = body.get("id")
    expect(isinstance(vid, str) and vid, "start: expected an id", body)
    print(f"started {vid}: pending, tries_left {body.get('tries_left')}")
    path = base + "/v1/verifications/" + urllib.parse.quote(vid, safe="")

    # 2. The code the end user would have received: the sandbox's inbox, newest first.
    inbox_url = sandbox + "/__sandbox/otps?" + urllib.parse.urlencode({"mobile": mobile})
    status, _, inbox = call("GET", inbox_url)
    expect(status == 200 and inbox.get("otps"), f"sandbox inbox: expected HTTP 200 with an OTP, got {status}", inbox)
    code = inbox["otps"][0].get("otp")
    expect(isinstance(code, str) and code.isdigit(), "sandbox inbox: expected a numeric otp", inbox)
    print(f"sandbox inbox: code {code}")

    # 3. A wrong code: a problem (RFC 9457) 422 wrong_otp, one try fewer.
    wrong = code[:-1] + ("1" if code[-1] == "0" else "0")
    status, content_type, problem = call("POST", path + "/check", key, {"code": wrong})
    expect(status == 422, f"wrong code: expected HTTP 422, got {status}", problem)
    expect(
        content_type.split(";")[0].strip() == "application/problem+json",
        f"wrong code: expected Content-Type application/problem+json, got {content_type!r}",
        problem,
    )
    expect(problem.get("code") == "wrong_otp", "wrong code: expected code wrong_otp", problem)
    expect(problem.get("tries_left") == 4, "wrong code: expected tries_left 4", problem)
    print("wrong code: 422 wrong_otp, tries_left 4")

    # 4. The right code: approved.
    status, _, body = call("POST", path + "/check", key, {"code": code})
    expect(status == 200, f"right code: expected HTTP 200, got {status}", body)
    expect(body.get("status") == "approved", "right code: expected status approved", body)
    print("right code: 200 approved")

    # 5. The status, read again.
    status, _, body = call("GET", path, key)
    expect(status == 200, f"status: expected HTTP 200, got {status}", body)
    expect(body.get("status") == "approved", "status: expected approved", body)
    print("status: approved")
    print("ok: python flow passed")


if __name__ == "__main__":
    try:
        main()
    except Deviation as deviation:
        print(f"verify_flow.py: FAILED: {deviation}", file=sys.stderr)
        sys.exit(1)
