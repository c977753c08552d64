//! Where a request goes: validated base URLs and each gateway's documented hosts.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use url::{Host, Url};

use crate::{Error, Gateway};

/// A base URL that passed the transport rules: `https`, or `http` to a loopback host
/// (127.0.0.0/8, ::1, `localhost`), or `http` anywhere only with an explicit opt-in.
/// No credentials, query or fragment. A path prefix is kept and the API path appended to it.
#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrl(Url);

impl BaseUrl {
    /// Parses and checks a base URL; `allow_insecure_http` permits plain http to a remote host.
    pub fn parse(input: &str, allow_insecure_http: bool) -> Result<Self, Error> {
        let url = Url::parse(input.trim())
            .map_err(|e| Error::configuration(format!("invalid base URL: {e}")).with_source(e))?;
        let host = url.host().ok_or_else(|| Error::configuration("the base URL has no host"))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&host) || allow_insecure_http => {}
            "http" => {
                return Err(Error::configuration(
                    "refusing plain http to a non-loopback host: use https, or opt in to insecure http explicitly",
                ))
            }
            other => return Err(Error::configuration(format!("unsupported base URL scheme {other:?}: use https"))),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::configuration("the base URL must not carry credentials"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::configuration("the base URL must not carry a query or fragment"));
        }
        Ok(Self(url))
    }

    /// The URL for an API path (`/v3/merchant/otp/send`) under this base, with a query.
    pub fn join(&self, api_path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.0.clone();
        let prefix = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{prefix}{api_path}"));
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Whether the host is a loopback address.
    pub fn is_loopback(&self) -> bool {
        self.0.host().is_some_and(|h| is_loopback(&h))
    }

    /// The URL.
    pub(crate) fn url(&self) -> &Url {
        &self.0
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(domain) => domain.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({})", self.0)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// Which of a gateway's hosts to use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Environment {
    /// The provider's documented test host (PhonePe UAT, Paytm staging, iServeU development, AOPay UAT).
    #[default]
    Uat,
    /// The provider's documented production host.
    Production,
    /// Any other base URL (a proxy, the sandbox, a production host issued at onboarding).
    Custom(String),
}

/// A gateway's documented hosts.
#[derive(Debug, Clone, Copy)]
pub struct KnownHosts {
    /// The test host.
    pub uat: &'static str,
    /// The production host, when the provider publishes one.
    pub production: Option<&'static str>,
}

impl Environment {
    /// The base URL of this environment for a gateway.
    pub fn base_url(&self, gateway: Gateway, hosts: &KnownHosts, allow_insecure_http: bool) -> Result<BaseUrl, Error> {
        match self {
            Environment::Uat => BaseUrl::parse(hosts.uat, false),
            Environment::Production => match hosts.production {
                Some(host) => BaseUrl::parse(host, false),
                None => Err(Error::configuration(format!(
                    "{gateway} publishes no production host: set the base URL issued at onboarding"
                ))),
            },
            Environment::Custom(url) => BaseUrl::parse(url, allow_insecure_http),
        }
    }
}

/// The name is not `uat` or `production`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown environment {0:?}: expected uat or production")]
pub struct UnknownEnvironment(pub String);

impl FromStr for Environment {
    type Err = UnknownEnvironment;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "uat" | "staging" | "development" | "dev" => Ok(Environment::Uat),
            "production" | "prod" => Ok(Environment::Production),
            _ => Err(UnknownEnvironment(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_loopback_http_are_accepted() {
        for ok in [
            "https://mercury-uat.phonepe.com",
            "http://127.0.0.1:8080",
            "http://127.8.9.10",
            "http://[::1]:9000/",
            "http://localhost:3000/prefix",
            "http://LOCALHOST",
        ] {
            BaseUrl::parse(ok, false).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn remote_http_needs_an_opt_in_and_other_forms_are_refused() {
        for bad in ["http://example.com", "http://10.0.0.1", "http://localhost.example.com"] {
            let error = BaseUrl::parse(bad, false).unwrap_err();
            assert!(error.is_configuration() && error.to_string().contains("plain http"), "{bad}: {error}");
            BaseUrl::parse(bad, true).unwrap();
        }
        for bad in [
            "ftp://example.com",
            "not a url",
            "https://user:pass@example.com",
            "https://example.com/?a=b",
            "https://example.com/#x",
            "file:///etc/passwd",
        ] {
            let error = BaseUrl::parse(bad, true).unwrap_err();
            assert!(error.is_configuration(), "{bad}: {error}");
            assert!(!error.to_string().contains("pass@"), "{error}");
        }
    }

    #[test]
    fn a_user_or_a_password_alone_is_refused_too() {
        for bad in ["https://user@example.com", "https://:secret@example.com"] {
            let error = BaseUrl::parse(bad, false).unwrap_err();
            assert!(error.to_string().contains("credentials"), "{bad}: {error}");
        }
        assert!(BaseUrl::parse("https://example.com/?", false).is_err(), "an empty query is still a query");
        assert!(BaseUrl::parse("https://example.com/#", false).is_err(), "an empty fragment is still one");
    }

    #[test]
    fn loopback_is_only_loopback_and_the_url_prints_as_given() {
        for (url, loopback) in [
            ("http://127.0.0.1:9", true),
            ("http://[::1]:9", true),
            ("http://localhost", true),
            ("https://example.com", false),
            ("https://10.0.0.1", false),
            ("https://localhost.example.com", false),
        ] {
            assert_eq!(BaseUrl::parse(url, false).unwrap().is_loopback(), loopback, "{url}");
        }
        let base = BaseUrl::parse("https://proxy.example.com/phonepe", false).unwrap();
        assert_eq!(base.to_string(), "https://proxy.example.com/phonepe");
        assert_eq!(format!("{base:?}"), "BaseUrl(https://proxy.example.com/phonepe)");
    }

    #[test]
    fn environments_parse_from_their_names() {
        for (name, expected) in [
            ("uat", Environment::Uat),
            ("staging", Environment::Uat),
            ("development", Environment::Uat),
            ("DEV", Environment::Uat),
            ("production", Environment::Production),
            ("Prod", Environment::Production),
        ] {
            assert_eq!(name.parse::<Environment>(), Ok(expected), "{name}");
        }
        assert_eq!("live".parse::<Environment>(), Err(UnknownEnvironment("live".into())));
    }

    #[test]
    fn api_paths_are_appended_to_a_prefix() {
        let base = BaseUrl::parse("https://proxy.example.com/phonepe/", false).unwrap();
        assert_eq!(
            base.join("/v3/merchant/otp/send", &[]).as_str(),
            "https://proxy.example.com/phonepe/v3/merchant/otp/send"
        );
        let base = BaseUrl::parse("https://accounts-uat.paytm.com", false).unwrap();
        assert_eq!(
            base.join("/v4/signin/otp/sv1/", &[("locale", "en-IN")]).as_str(),
            "https://accounts-uat.paytm.com/v4/signin/otp/sv1/?locale=en-IN"
        );
    }

    #[test]
    fn production_without_a_published_host_is_a_configuration_error() {
        let hosts = KnownHosts { uat: "https://apidev.iserveu.online", production: None };
        let error = Environment::Production.base_url(Gateway::IServeU, &hosts, false).unwrap_err();
        assert!(error.is_configuration());
        assert!(error.to_string().contains("base URL issued at onboarding"), "{error}");
        assert_eq!(
            Environment::Uat.base_url(Gateway::IServeU, &hosts, false).unwrap().as_str(),
            "https://apidev.iserveu.online/"
        );
    }
}
