#!/usr/bin/env node
// The whole verification flow against `otp serve --sandbox`, as a Node backend would run it.
//
// Node 18+ only: its built-in fetch, no npm packages, no package.json.
//
//     node verify_flow.mjs BASE_URL API_KEY SANDBOX_URL [MOBILE]
//
// or with OTP_BASE_URL, OTP_API_KEY, OTP_SANDBOX_URL (and OTP_MOBILE) in the environment.
// Exits 0 when every step answered as expected, 1 with a message on stderr otherwise.

class Deviation extends Error {}

function config() {
  const args = process.argv.slice(2);
  if (args.length > 4) throw new Deviation("usage: verify_flow.mjs BASE_URL API_KEY SANDBOX_URL [MOBILE]");
  const names = ["OTP_BASE_URL", "OTP_API_KEY", "OTP_SANDBOX_URL", "OTP_MOBILE"];
  const values = names.map((name, i) => (i < args.length ? args[i] : process.env[name] ?? ""));
  if (!values[3]) values[3] = "9876543210";
  const missing = names.filter((_, i) => !values[i]);
  if (missing.length) {
    throw new Deviation(
      `missing ${missing.join(", ")} (usage: verify_flow.mjs BASE_URL API_KEY SANDBOX_URL [MOBILE], ` +
        "or set OTP_BASE_URL, OTP_API_KEY, OTP_SANDBOX_URL)",
    );
  }
  const [base, key, sandbox, mobile] = values;
  return { base: base.replace(/\/+$/, ""), key, sandbox: sandbox.replace(/\/+$/, ""), mobile };
}

// One request: { status, contentType, body } with the body parsed; 4xx/5xx are answers too.
async function call(method, url, key, body) {
  const headers = { Accept: "application/json" };
  if (key !== undefined) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    throw new Deviation(`${method} ${url}: no answer: ${error.cause?.message ?? error.message}`);
  }
  const text = await response.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Deviation(`${method} ${url}: HTTP ${response.status}, body is not JSON: ${text.slice(0, 300)}`);
  }
  return { status: response.status, contentType: response.headers.get("content-type") ?? "", body: parsed };
}

function expect(condition, message, answer) {
  if (!condition) throw new Deviation(`${message}; got ${JSON.stringify(answer)}`);
}

async function main() {
  const { base, key, sandbox, mobile } = config();

  // 1. Start a verification: the service sends the OTP through the (sandbox) gateway.
  let answer = await call("POST", `${base}/v1/verifications`, key, {
    gateway: "phonepe",
    to: mobile,
    client_ip: "203.0.113.7",
  });
  expect(answer.status === 201, `start: expected HTTP 201, got ${answer.status}`, answer.body);
  expect(answer.body.status === "pending", "start: expected status pending", answer.body);
  const id = answer.body.id;
  expect(typeof id === "string" && id.length > 0, "start: expected an id", answer.body);
  console.log(`started ${id}: pending, tries_left ${answer.body.tries_left}`);
  const path = `${base}/v1/verifications/${encodeURIComponent(id)}`;

  // 2. The code the end user would have received: the sandbox's inbox, newest first.
  answer = await call("GET", `${sandbox}/__sandbox/otps?${new URLSearchParams({ mobile })}`);
  const otps = answer.body.otps;
  expect(answer.status === 200 && Array.isArray(otps) && otps.length > 0,
    `sandbox inbox: expected HTTP 200 with an OTP, got ${answer.status}`, answer.body);
  const code = otps[0].otp;
  expect(typeof code === "string" && /^\d+$/.test(code), "sandbox inbox: expected a numeric otp", answer.body);
  console.log(`sandbox inbox: code ${code}`);

  // 3. A wrong code: a problem (RFC 9457) 422 wrong_otp, one try fewer.
  const wrong = code.slice(0, -1) + (code.endsWith("0") ? "1" : "0");
  answer = await call("POST", `${path}/check`, key, { code: wrong });
  expect(answer.status === 422, `wrong code: expected HTTP 422, got ${answer.status}`, answer.body);
  const mediaType = answer.contentType.split(";")[0].trim();
  expect(mediaType === "application/problem+json",
    `wrong code: expected Content-Type application/problem+json, got ${JSON.stringify(answer.contentType)}`,
    answer.body);
  expect(answer.body.code === "wrong_otp", "wrong code: expected code wrong_otp", answer.body);
  expect(answer.body.tries_left === 4, "wrong code: expected tries_left 4", answer.body);
  console.log("wrong code: 422 wrong_otp, tries_left 4");

  // 4. The right code: approved.
  answer = await call("POST", `${path}/check`, key, { code });
  expect(answer.status === 200, `right code: expected HTTP 200, got ${answer.status}`, answer.body);
  expect(answer.body.status === "approved", "right code: expected status approved", answer.body);
  console.log("right code: 200 approved");

  // 5. The status, read again.
  answer = await call("GET", path, key);
  expect(answer.status === 200, `status: expected HTTP 200, got ${answer.status}`, answer.body);
  expect(answer.body.status === "approved", "status: expected approved", answer.body);
  console.log("status: approved");
  console.log("ok: node flow passed");
}

try {
  await main();
} catch (error) {
  // A Deviation is the flow's own finding; anything else is a bug here, shown with its stack.
  console.error(`verify_flow.mjs: FAILED: ${error instanceof Deviation ? error.message : error.stack}`);
  process.exit(1);
}
