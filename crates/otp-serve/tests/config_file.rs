//! The TOML config end to end: every gateway's table with its credentials given inline, as a
//! `*_file`, or by the CLI's environment variable, against the sandbox (which checks them);
//! a missing credential named with its variable; wrong credentials answered as
//! `gateway_authentication`; the store key from its variable.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

mod common;

use common::{fixture, number, start_body, Api};
use otp::sandbox::{Sandbox, SandboxConfig};
use otp::Gateway;
use otp_serve::{NewApiKey, Scope, SecretSource, ServeConfig, Server};

const STORE_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

struct Written {
    text: String,
    vars: Vec<(String, String)>,
    dir: std::path::PathBuf,
    key: String,
}

/// A config of every gateway at `base_url`; each gateway's first credential comes from its
/// variable, its second (if any) from a file, the rest inline. `spoil` changes one value.
fn written(base_url: &str, spoil: Option<(Gateway, &str)>) -> Written {
    let dir = std::env::temp_dir().join(format!("otp-serve-config-{}-{}", std::process::id(), number()));
    std::fs::create_dir_all(&dir).unwrap();
    let new = NewApiKey::generate().unwrap();
    let mut text = format!(
        "listen = \"127.0.0.1:0\"\nretention_s = 3600\n\n[store]\nkind = \"memory\"\n\n{}\n[guard]\ncooldown_s = 0\n\n[[test_numbers]]\nto = \"9999999999\"\ncode = \"123456\"\n",
        new.config_lines("backend", "checkout", &Scope::ALL)
    );
    let mut vars = vec![("OTP_SERVE_STORE_KEY".to_owned(), STORE_KEY.to_owned())];
    for gateway in Gateway::ALL {
        let config = fixture(gateway)["config"].clone();
        text.push_str(&format!("\n[gateways.{}]\nbase_url = \"{base_url}\"\n", gateway.as_str()));
        for (index, (key, value)) in config["credentials"].as_object().unwrap().iter().enumerate() {
            let mut value = value.as_str().unwrap().to_owned();
            if spoil == Some((gateway, key.as_str())) {
                value = format!("{value}-wrong");
            }
            match index {
                0 => vars.push((config["env"][key].as_str().unwrap().to_owned(), value)),
                1 => {
                    let file = format!("{}-{key}", gateway.as_str());
                    std::fs::write(dir.join(&file), format!("{value}\n")).unwrap();
                    text.push_str(&format!("{key}_file = \"{file}\"\n"));
                }
                _ => text.push_str(&format!("{key} = \"{value}\"\n")),
            }
        }
    }
    Written { text, vars, dir, key: new.key.expose_secret().to_owned() }
}

impl Drop for Written {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn load(written: &Written) -> Result<ServeConfig, otp_serve::ConfigError> {
    ServeConfig::from_toml_with(&written.text, &SecretSource::vars(written.vars.clone()).dir(&written.dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gateway_s_credentials_come_inline_from_a_file_or_from_the_cli_s_variable() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let config = written(&sandbox.base_url(), None);
    let loaded = load(&config).unwrap();
    let shown = format!("{loaded:?}");
    assert!(!shown.contains(STORE_KEY), "the store key never shows");
    for gateway in Gateway::ALL {
        for value in fixture(gateway)["config"]["credentials"].as_object().unwrap().values() {
            let value = value.as_str().unwrap();
            if value.contains("secret") || value.contains("salt") {
                assert!(!shown.contains(value), "{value} shows in the config's Debug");
            }
        }
    }
    assert!(!shown.contains(&config.key) && !shown.contains("123456"), "{shown}");
    let server = Server::start(loaded).await.unwrap();
    let api = Api::new(server.base_url());
    for gateway in Gateway::ALL {
        let to = number();
        let answer = api.start(&config.key, start_body(gateway, &to), &[]).await;
        assert_eq!(answer.status, 201, "{gateway}: {}", answer.text);
        assert_eq!(sandbox.otps(&to).len(), 1, "{gateway}: the sandbox accepted its credentials");
    }
    let test = api.start(&config.key, start_body(Gateway::ALL[0], "9999999999"), &[]).await;
    assert_eq!(test.body["test"], true, "the file's test number");

    // Wrong credentials: the gateway refuses the service, which says so as its own problem.
    for gateway in Gateway::ALL {
        // The secret the gateway checks (its fixture's `spoil`).
        let spoil = fixture(gateway)["config"]["spoil"].as_str().unwrap().to_owned();
        let spoilt = written(&sandbox.base_url(), Some((gateway, &spoil)));
        let server = Server::start(load(&spoilt).unwrap()).await.unwrap();
        let api = Api::new(server.base_url());
        let answer = api.start(&spoilt.key, start_body(gateway, &number()), &[]).await;
        assert_eq!((answer.status, answer.code()), (502, Some("gateway_authentication")), "{gateway}: {}", answer.text);
    }
}

#[test]
fn a_missing_credential_is_named_with_its_variable() {
    for gateway in Gateway::ALL {
        let mut config = written("http://127.0.0.1:9", None);
        let env = fixture(gateway)["config"]["env"].clone();
        let (key, variable) = env.as_object().unwrap().iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap();
        config.vars.retain(|(name, _)| variable.as_str() != Some(name.as_str()));
        let error = load(&config).unwrap_err();
        assert_eq!(error.key(), format!("gateways.{}.{key}", gateway.as_str()));
        assert!(error.message().contains(variable.as_str().unwrap()), "{error}");
    }
}

#[test]
fn a_gateway_table_refuses_what_it_does_not_know() {
    let gateway = Gateway::ALL[0];
    let mut config = written("http://127.0.0.1:9", None);
    config.text = config.text.replace(
        &format!("[gateways.{}]\n", gateway.as_str()),
        &format!("[gateways.{}]\ncolour = \"blue\"\n", gateway.as_str()),
    );
    assert_eq!(load(&config).unwrap_err().key(), format!("gateways.{}.colour", gateway.as_str()));
    let mut config = written("http://127.0.0.1:9", None);
    config.text = config.text.replace(
        &format!("[gateways.{}]\nbase_url", gateway.as_str()),
        &format!("[gateways.{}]\nenvironment = \"uat\"\nbase_url", gateway.as_str()),
    );
    assert_eq!(load(&config).unwrap_err().key(), format!("gateways.{}.base_url", gateway.as_str()));
    let mut config = written("http://127.0.0.1:9", None);
    config.text = config.text.replace("kind = \"memory\"", "kind = \"redis\"\nurl = \"redis://127.0.0.1:1/\"");
    config.vars.retain(|(name, _)| name != "OTP_SERVE_STORE_KEY");
    let error = load(&config).unwrap_err();
    assert_eq!(error.key(), "store.key_env");
    assert!(error.message().contains("OTP_SERVE_STORE_KEY"), "{error}");
    let mut config = written("http://127.0.0.1:9", None);
    config.text = config.text.replace("listen = \"127.0.0.1:0\"", "listen = \"0.0.0.0:8080\"");
    assert_eq!(load(&config).unwrap_err().key(), "listen", "public without a proxy");
    config.text = config.text.replace("listen = \"0.0.0.0:8080\"", "listen = \"0.0.0.0:8080\"\nbehind_proxy = true");
    assert!(load(&config).is_ok());
}
