//! The sandbox's inbox page in a real browser: Debian's Chromium, headless, driven over
//! WebDriver (chromedriver, spoken to with reqwest). Codes sent through the SDK appear newest
//! first without a reload, a filter narrows them, a verification, an expiry and a reset show,
//! a reference carrying markup shows as text, the page reconnects to a restarted sandbox, and a
//! sandbox beyond loopback asks for its token. Without chromium and chromedriver the test
//! fails with the reason; it never skips (`.ci/run` installs both).
//!
//! `OTP_INBOX_SCREENSHOT=docs/sandbox-inbox.png cargo test -p otp-cli --test inbox_page` also
//! writes the page's screenshot (1280×800; the path is relative to the workspace root).

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use otp::sandbox::{Sandbox, SandboxConfig};
use otp::{ClientOptions, Environment, Gateway, GatewayClient, MobileNumber, OtpCode, SendOtpRequest, VerifyExtras};
use serde_json::{json, Value};

/// How long the page may take to show a change (it takes milliseconds; CI machines are slow).
const PATIENCE: Duration = Duration::from_secs(20);

/// The AOPay OTP's validity here: short, so that its expiry shows during the test.
const AOPAY_VALIDITY: Duration = Duration::from_secs(6);

// --- The browser -------------------------------------------------------------------------------

/// A program on PATH, by the first of `names` found.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| std::env::split_paths(&path).map(|dir| dir.join(name)).find(|file| file.is_file()))
}

/// chromedriver, stopped (with its browser) when dropped, even by a failed assertion.
struct Driver {
    child: Child,
    port: u16,
    session: Option<String>,
    log: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Ending the session closes Chromium; killing chromedriver alone would orphan it.
        if let Some(session) = self.session.take() {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = write!(
                    stream,
                    "DELETE /session/{session} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One headless Chromium session.
struct Browser {
    http: reqwest::Client,
    session_url: String,
    /// Held for its drop: the session ends, and chromedriver and Chromium stop, with the browser.
    _driver: Driver,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    async fn start() -> Self {
        let chromium = on_path(&["chromium", "chromium-browser"]).unwrap_or_else(|| {
            panic!("chromium is not on PATH: this test drives a real browser (Debian: apt-get install chromium chromium-driver; .ci/run installs them)")
        });
        let chromedriver = on_path(&["chromedriver"]).unwrap_or_else(|| {
            panic!("chromedriver is not on PATH (Debian: apt-get install chromium-driver; .ci/run installs it)")
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chromedriver-{port}.log"));
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("{} could not start: {error}", chromedriver.display()));
        let mut driver = Driver { child, port, session: None, log };
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let root = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = match http.get(format!("{root}/status")).send().await {
                Ok(response) => response.text().await.is_ok_and(|text| text.contains("\"ready\":true")),
                Err(_) => false,
            };
            if ready {
                break;
            }
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("chromedriver exited ({status}) before it was ready; its log: {}", driver.log.display());
            }
            assert!(started.elapsed() < PATIENCE, "chromedriver did not get ready; its log: {}", driver.log.display());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // The console (CSP violations, uncaught errors) and every request the page made.
            "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                // Root in a container has no user namespace for Chromium's sandbox.
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--window-size=1280,800", "--hide-scrollbars", "--no-first-run", "--lang=en-GB"],
            },
        }}});
        let response = http.post(format!("{root}/session")).body(capabilities.to_string()).send().await.unwrap();
        let text = response.text().await.unwrap();
        let created: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("WebDriver answered {text}"));
        let Some(session) = created["value"]["sessionId"].as_str() else {
            panic!("Chromium did not start: {text}\nchromedriver's log: {}", driver.log.display());
        };
        driver.session = Some(session.to_owned());
        let browser = Self { http, session_url: format!("{root}/session/{session}"), _driver: driver };
        // Exactly 1280×800 CSS pixels at scale 1, whatever the window manager-less window is.
        let metrics = json!({"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": false});
        browser.cdp("Emulation.setDeviceMetricsOverride", metrics).await;
        browser
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session_url));
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("WebDriver {path}: {status} {text}"));
        assert!(status.is_success(), "WebDriver {path}: {status} {text}");
        value["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    /// A Chrome DevTools command, through chromedriver's own route for them.
    async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.post("/goog/cdp/execute", json!({"cmd": cmd, "params": params})).await
    }

    async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    async fn run(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []})).await
    }

    /// Runs `script` until `done` holds for its value, or fails saying `what` was awaited.
    async fn wait(&self, what: &str, script: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let value = self.run(script).await;
            if done(&value) {
                return value;
            }
            if started.elapsed() > PATIENCE {
                let page = self.run("return document.body.innerText").await;
                panic!("waited {PATIENCE:?} for {what}; last seen {value}\nthe page:\n{}", page.as_str().unwrap_or(""));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn element(&self, css: &str) -> String {
        let found = self.post("/element", json!({"using": "css selector", "value": css})).await;
        found[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {found}")).to_owned()
    }

    async fn click(&self, css: &str) {
        let element = self.element(css).await;
        self.post(&format!("/element/{element}/click"), json!({})).await;
    }

    /// Types `text` into the element, as keystrokes (`\u{E003}` is Backspace).
    async fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        self.post(&format!("/element/{element}/value"), json!({"text": text})).await;
    }

    async fn screenshot(&self) -> Vec<u8> {
        let encoded = self.command(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD.decode(encoded.as_str().unwrap()).unwrap()
    }

    /// The console's messages since last asked (CSP violations and uncaught errors land there).
    async fn console(&self) -> Vec<String> {
        let entries = self.post("/se/log", json!({"type": "browser"})).await;
        entries
            .as_array()
            .into_iter()
            .flatten()
            .map(|entry| entry["message"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// The requests the page sent since last asked, from the DevTools log: each one's URL and
    /// headers (an EventSource's too, which the page's own performance entries leave out).
    async fn requests(&self) -> Vec<(String, Value)> {
        let entries = self.post("/se/log", json!({"type": "performance"})).await;
        entries
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| serde_json::from_str::<Value>(entry["message"].as_str()?).ok())
            .filter(|message| message["message"]["method"] == "Network.requestWillBeSent")
            .map(|message| {
                let request = &message["message"]["params"]["request"];
                (request["url"].as_str().unwrap_or("").to_owned(), request["headers"].clone())
            })
            .collect()
    }
}

// --- The page ----------------------------------------------------------------------------------

/// The rows as the page shows them, newest first.
const ROWS: &str = "return [...document.querySelectorAll('#rows tr')].map((tr) => ({
    id: Number(tr.dataset.id), mobile: tr.dataset.mobile, status: tr.dataset.status, shown: !tr.hidden,
    time: tr.querySelector('.time').textContent, gateway: tr.querySelector('.gateway').textContent,
    number: tr.querySelector('.mobile').textContent, code: tr.querySelector('.digits').textContent,
    reference: tr.querySelector('.reference').textContent, full_reference: tr.querySelector('.reference').title,
    validity: tr.querySelector('.validity').textContent, badge: tr.querySelector('.badge').textContent,
}))";

fn rows(value: &Value) -> Vec<Value> {
    value.as_array().cloned().unwrap_or_default()
}

fn field<'a>(row: &'a Value, name: &str) -> &'a str {
    row[name].as_str().unwrap_or_else(|| panic!("no {name} in {row}"))
}

fn mobiles(rows: &[Value]) -> Vec<&str> {
    rows.iter().map(|row| field(row, "mobile")).collect()
}

async fn wait_rows(browser: &Browser, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    rows(&browser.wait(what, ROWS, |value| done(&rows(value))).await)
}

async fn wait_live(browser: &Browser) {
    let script = "return document.getElementById('connection').dataset.state";
    browser.wait("the event stream to be live", script, |state| state == "live").await;
}

// --- The SDK's side ----------------------------------------------------------------------------

fn client(gateway: Gateway, base_url: &str) -> GatewayClient {
    otp::sandbox::client(gateway, ClientOptions::new().environment(Environment::Custom(base_url.to_owned()))).unwrap()
}

/// A send of `gateway` to `mobile` that the sandbox answers with an OTP.
fn send_request(gateway: Gateway, mobile: &str) -> SendOtpRequest {
    let number = MobileNumber::parse(mobile).unwrap();
    match gateway {
        Gateway::PhonePe => otp::phonepe::SendOtpRequest::new(number).into(),
        Gateway::Paytm => otp::paytm::SendOtpRequest::new(number, "device-0042").scope("paytm").into(),
        Gateway::IServeU => {
            otp::iserveu::RegistrationOtpRequest::new(number, "AADHAAR", otp::IdentityNumber::new("765386439745"))
                .into()
        }
        Gateway::AOPay => {
            let remitter = otp::aopay::Remitter::new(
                "12 MG Road",
                otp::Pincode::parse("560001").unwrap(),
                otp::aopay::DateOfBirth::parse("20/08/1990").unwrap(),
                otp::Coordinates::new("12.97", "77.59").unwrap(),
            )
            .unwrap();
            let amount = otp::Amount::parse("100").unwrap();
            otp::aopay::SendOtpRequest::new(number, "BENE1001", otp::aopay::TransactionType::Imps, amount, remitter)
                .unwrap()
                .into()
        }
    }
}

/// An iServeU registration send straight to the sandbox (the SDK refuses such a reference),
/// with `reference` as its `externalRefNumber`: text the page must show as text.
async fn send_raw_reference(base_url: &str, mobile: &str, reference: &str) {
    use otp::sandbox::credentials::{ISERVEU_CLIENT_ID, ISERVEU_CLIENT_SECRET, ISERVEU_USERNAME};
    let (_, path, _) = otp_sandbox::ROUTES.iter().find(|(gateway, ..)| *gateway == Gateway::IServeU).unwrap();
    let body = json!({"otpType": "1", "customerMobileNumber": mobile, "username": ISERVEU_USERNAME,
                      "ovdType": "AADHAAR", "ovdData": "765386439745", "externalRefNumber": reference});
    let answer = reqwest::Client::new()
        .post(format!("{base_url}{path}"))
        .header("content-type", "application/json")
        .header("client_id", ISERVEU_CLIENT_ID)
        .header("client_secret", ISERVEU_CLIENT_SECRET)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let text = answer.text().await.unwrap();
    assert!(text.contains("\"statusCode\":\"0\""), "the sandbox refused {reference:?}: {text}");
}

/// The PNG's width and height, from its header.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 24, "not a PNG");
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    (be(16), be(20))
}

fn sandbox_config() -> SandboxConfig {
    SandboxConfig::default().aopay_otp_validity(AOPAY_VALIDITY)
}

// --- The tests ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_page_shows_codes_as_they_arrive_and_what_became_of_them() {
    let sandbox = Sandbox::start(sandbox_config()).await.unwrap();
    let base = sandbox.base_url();
    let page = reqwest::get(sandbox.inbox_url()).await.unwrap();
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe"), "no inline script or style is allowed: {policy}");

    let browser = Browser::start().await;
    browser.goto(&sandbox.inbox_url()).await;
    wait_live(&browser).await;
    let magic = browser
        .wait(
            "the magic numbers' table",
            "return [...document.querySelectorAll('#magic-rows tr')].map((tr) => tr.firstChild.textContent)",
            |rows| rows.as_array().is_some_and(|rows| !rows.is_empty()),
        )
        .await;
    let expected: Vec<&str> = otp_sandbox::magic::NUMBERS.iter().map(|(mobile, _)| *mobile).collect();
    assert_eq!(magic, json!(expected), "the table is the sandbox's own list");
    assert_eq!(browser.run("return document.getElementById('empty').hidden").await, json!(false));
    assert_eq!(browser.run("return document.scripts.length").await, json!(1));

    // One send per gateway, through the SDK: each appears on top, without a reload.
    let numbers = ["9876543210", "9876543211", "9876543212", "9876543213"];
    let mut sends = Vec::new();
    for (i, (gateway, mobile)) in Gateway::ALL.into_iter().zip(numbers).enumerate() {
        let request = send_request(gateway, mobile);
        let receipt = client(gateway, &base).send_otp(&request).await.unwrap();
        sends.push((gateway, request, receipt));
        let shown = wait_rows(&browser, &format!("{gateway}'s OTP on top"), |rows| rows.len() == i + 1).await;
        assert_eq!(field(&shown[0], "mobile"), mobile);
        assert_eq!(field(&shown[0], "gateway"), gateway.as_str());
        assert_eq!(field(&shown[0], "code"), sandbox.otps(mobile)[0].otp, "the code the sandbox issued");
        assert_eq!(field(&shown[0], "badge"), "pending");
    }
    let shown = rows(&browser.run(ROWS).await);
    let newest_first: Vec<&str> = numbers.iter().rev().copied().collect();
    assert_eq!(mobiles(&shown), newest_first);
    assert!(shown.windows(2).all(|pair| pair[0]["id"].as_u64() > pair[1]["id"].as_u64()), "{shown:?}");
    assert!(field(&shown[0], "validity").contains(':'), "a countdown: {}", shown[0]);

    // The filter: one number.
    browser.type_into("#filter", "3211").await;
    let filtered = wait_rows(&browser, "the filter to leave one row", |rows| {
        rows.iter().filter(|row| row["shown"] == json!(true)).count() == 1
    })
    .await;
    let visible: Vec<&Value> = filtered.iter().filter(|row| row["shown"] == json!(true)).collect();
    assert_eq!(field(visible[0], "mobile"), "9876543211");
    assert_eq!(browser.run("return document.getElementById('count').textContent").await, json!("1 of 4 shown"));
    browser.type_into("#filter", &"\u{E003}".repeat(4)).await;
    wait_rows(&browser, "every row back", |rows| rows.iter().all(|row| row["shown"] == json!(true))).await;

    // A verification through the SDK, with the code the page shows.
    let (gateway, request, receipt) = sends.iter().find(|(gateway, ..)| *gateway == Gateway::PhonePe).unwrap();
    let mobile = request.mobile().expose_digits().to_owned();
    let row = shown.iter().find(|row| field(row, "mobile") == mobile).unwrap();
    let code = OtpCode::parse(field(row, "code")).unwrap();
    let verify =
        request.verify_request(receipt.reference.as_ref(), receipt.outcome, code, &VerifyExtras::new()).unwrap();
    client(*gateway, &base).verify_otp(&verify).await.unwrap();
    let after = wait_rows(&browser, "the verified mark", |rows| {
        rows.iter().any(|row| row["mobile"] == json!(mobile) && row["status"] == json!("verified"))
    })
    .await;
    let verified = after.iter().find(|row| field(row, "mobile") == mobile).unwrap();
    assert_eq!(field(verified, "badge"), "verified");

    // The copy button puts the code on the clipboard.
    let origin = base.clone();
    browser
        .cdp(
            "Browser.grantPermissions",
            json!({"origin": origin, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]}),
        )
        .await;
    browser.click(&format!("#rows tr[data-mobile='{mobile}'] .copy")).await;
    let copied = browser
        .post(
            "/execute/async",
            json!({"script": "const done = arguments[arguments.length - 1];
                              navigator.clipboard.readText().then(done, (error) => done('no clipboard: ' + error));",
                   "args": []}),
        )
        .await;
    assert_eq!(copied, json!(field(verified, "code")));

    // AOPay's short-lived OTP: its expiry is announced by the sandbox, not just counted down.
    let aopay = numbers[Gateway::ALL.iter().position(|g| *g == Gateway::AOPay).unwrap()];
    wait_rows(&browser, "AOPay's OTP marked expired by the sandbox", |rows| {
        rows.iter().any(|row| row["mobile"] == json!(aopay) && row["status"] == json!("expired"))
    })
    .await;

    // The picture: no focus ring, no hover on the button clicked last.
    browser.run("document.activeElement.blur()").await;
    let away = json!({"type": "pointer", "id": "mouse", "actions": [{"type": "pointerMove", "x": 1, "y": 799, "origin": "viewport"}]});
    browser.post("/actions", json!({"actions": [away]})).await;
    let png = browser.screenshot().await;
    assert_eq!(png_size(&png), (1280, 800));
    if let Some(path) = std::env::var_os("OTP_INBOX_SCREENSHOT") {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path);
        std::fs::write(&path, &png).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    }

    // Markup in a provider-supplied value is text: the reference shows its brackets, and no
    // element is made of it.
    for (mobile, reference) in [("9876500001", "<script>x</script>"), ("9876500002", "<img src=x onerror=y>")] {
        send_raw_reference(&base, mobile, reference).await;
        let shown = wait_rows(&browser, &format!("the {reference} row"), |rows| {
            rows.iter().any(|row| row["mobile"] == json!(mobile))
        })
        .await;
        let row = shown.iter().find(|row| field(row, "mobile") == mobile).unwrap();
        assert_eq!(field(row, "full_reference"), reference);
        assert!(reference.starts_with(field(row, "reference").trim_end_matches('…')), "{row}");
    }
    let rows_text = browser.run("return document.getElementById('rows').textContent").await;
    assert!(rows_text.as_str().unwrap().contains("<script>"), "{rows_text}");
    assert_eq!(browser.run("return document.scripts.length").await, json!(1), "no script element was added");
    assert_eq!(
        browser.run("return document.querySelectorAll('#rows *:not(tr):not(td):not(span):not(button)').length").await,
        json!(0)
    );

    // A restart: the page reconnects by itself and shows the new sandbox's inbox. The open
    // event stream does not hold the shutdown.
    let addr: SocketAddr = sandbox.addr();
    let stopping = Instant::now();
    sandbox.shutdown(Duration::from_secs(10)).await;
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "the event stream held the shutdown: {:?}",
        stopping.elapsed()
    );
    let sandbox = Sandbox::bind(addr, sandbox_config()).await.unwrap();
    wait_rows(&browser, "the restarted sandbox's empty inbox", <[Value]>::is_empty).await;
    wait_live(&browser).await;
    let gateway = Gateway::ALL[0];
    client(gateway, &base).send_otp(&send_request(gateway, "9876543299")).await.unwrap();
    let shown = wait_rows(&browser, "an OTP from the restarted sandbox", |rows| rows.len() == 1).await;
    assert_eq!(field(&shown[0], "mobile"), "9876543299");

    // Reset, from the page's button: the list empties, and so does the sandbox.
    browser.click("#reset").await;
    wait_rows(&browser, "the list emptied by the reset", <[Value]>::is_empty).await;
    assert_eq!(browser.run("return document.getElementById('empty').hidden").await, json!(false));
    assert!(sandbox.otps("9876543299").is_empty());

    let console = browser.console().await;
    let problems: Vec<&String> = console
        .iter()
        .filter(|message| message.contains("Content Security Policy") || message.contains("Uncaught"))
        .collect();
    assert!(problems.is_empty(), "the console: {problems:#?}");
}

const ADMIN_TOKEN: &str = "inbox-page-admin-token-0123";

/// `otp sandbox` beyond loopback, with a token.
struct RemoteSandbox(Child);

impl Drop for RemoteSandbox {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_the_page_asks_for_the_token_and_its_events_need_it() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_otp"))
        .args(["sandbox", "--addr", "0.0.0.0:0", "--allow-remote"])
        .env("OTP_SANDBOX_TOKEN", ADMIN_TOKEN)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let server = RemoteSandbox(child);
    let (mut first, mut second) = (String::new(), String::new());
    stdout.read_line(&mut first).unwrap();
    stdout.read_line(&mut second).unwrap();
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let listening = first.trim().strip_prefix("otp sandbox listening on ").unwrap_or_else(|| panic!("{first:?}"));
    let inbox =
        second.trim().strip_prefix("inbox:").unwrap_or_else(|| panic!("the second line names the page: {second:?}"));
    assert!(inbox.trim_start().starts_with(&format!("{listening}/__sandbox/")), "{second:?}");
    let port = listening.rsplit(':').next().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let page_url = format!("{base}/__sandbox/");

    // Over HTTP: the page (no data in it) loads; its data, ticket and events need the token.
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    assert_eq!(http.get(&page_url).send().await.unwrap().status(), 200);
    for path in ["/__sandbox/events", "/__sandbox/events?ticket=4102444800000.AAAA", "/__sandbox/magic"] {
        assert_eq!(http.get(format!("{base}{path}")).send().await.unwrap().status(), 401, "{path}");
    }
    assert_eq!(http.post(format!("{base}/__sandbox/ticket")).send().await.unwrap().status(), 401);
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let ticket = http.post(format!("{base}/__sandbox/ticket")).header("authorization", &bearer).send().await.unwrap();
    assert_eq!(ticket.status(), 200);
    let ticket: Value = serde_json::from_str(&ticket.text().await.unwrap()).unwrap();
    let ticket = ticket["ticket"].as_str().unwrap().to_owned();
    let events = http.get(format!("{base}/__sandbox/events?ticket={ticket}")).send().await.unwrap();
    assert_eq!(events.status(), 200);
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    drop(events);

    let browser = Browser::start().await;
    browser.goto(&page_url).await;
    let state = "return [document.getElementById('login').hidden, document.getElementById('inbox').hidden,
                         document.getElementById('connection').dataset.state]";
    browser.wait("the login form", state, |value| *value == json!([false, true, "locked"])).await;
    assert_eq!(browser.run("return document.querySelectorAll('#rows tr, #magic-rows tr').length").await, json!(0));

    browser.type_into("#token", "not-the-admin-token-at-all").await;
    browser.click("#login-form button").await;
    let error = "return document.getElementById('login-error').hidden ? null : document.getElementById('login-error').textContent";
    let refused = browser.wait("the refusal", error, |value| !value.is_null()).await;
    assert!(refused.as_str().unwrap().contains("refused"), "{refused}");
    assert_eq!(browser.run("return sessionStorage.length").await, json!(0), "a refused token is not kept");

    browser.type_into("#token", ADMIN_TOKEN).await;
    browser.click("#login-form button").await;
    wait_live(&browser).await;
    browser
        .wait("the magic table", "return document.querySelectorAll('#magic-rows tr').length", |n| *n == json!(6))
        .await;
    let gateway = Gateway::ALL[0];
    client(gateway, &base).send_otp(&send_request(gateway, "9876543210")).await.unwrap();
    let shown = wait_rows(&browser, "the OTP, through the ticketed stream", |rows| rows.len() == 1).await;
    assert_eq!(field(&shown[0], "mobile"), "9876543210");

    let kept =
        browser.run("return [sessionStorage.getItem('otp-sandbox-token'), localStorage.length, document.cookie]").await;
    assert_eq!(kept, json!([ADMIN_TOKEN, 0, ""]), "the token is kept in this tab's sessionStorage only");
    let requests = browser.requests().await;
    let urls: Vec<&str> = requests.iter().map(|(url, _)| url.as_str()).collect();
    assert!(urls.iter().any(|url| url.starts_with(&format!("{base}/__sandbox/events?ticket="))), "{urls:?}");
    assert!(urls.iter().all(|url| !url.contains(ADMIN_TOKEN)), "the token never travels in a URL: {urls:?}");
    let (_, headers) = requests.iter().find(|(url, _)| url.ends_with("/__sandbox/ticket")).unwrap();
    let authorization =
        headers.as_object().unwrap().iter().find(|(name, _)| name.eq_ignore_ascii_case("authorization"));
    assert_eq!(
        authorization.map(|(_, value)| value),
        Some(&json!(bearer)),
        "the ticket is bought with the token: {headers}"
    );

    // SIGTERM: `otp sandbox` ends the page's open stream and exits at once, not after its grace.
    let mut server = server;
    let signalled = Command::new("kill").args(["-TERM", &server.0.id().to_string()]).status().unwrap();
    assert!(signalled.success());
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(stopping.elapsed() < Duration::from_secs(4), "otp sandbox did not stop with the page open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    drop(browser);
}
