//! The offline sandbox, and clients pointed at it with its credentials (feature `sandbox`):
//! the one way tests, benchmarks and the `otp` command build sandbox clients.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use otp::sandbox::{self, Sandbox, SandboxConfig};
//! use otp::{ClientOptions, Environment, Gateway};
//!
//! let sandbox = Sandbox::start(SandboxConfig::default()).await?;
//! let options = ClientOptions::new().environment(Environment::Custom(sandbox.base_url()));
//! let client = sandbox::client(Gateway::Paytm, options)?;
//! assert_eq!(client.gateway(), Gateway::Paytm);
//! # Ok(())
//! # }
//! ```

pub use otp_sandbox::{credentials, Sandbox, SandboxConfig, SentOtp};

use crate::{ClientOptions, Error, Gateway, GatewayClient};

/// A client of `gateway` with the sandbox's default [`credentials`], sending as `options` say
/// (point its environment at [`Sandbox::base_url`]). A gateway whose feature is off is a
/// configuration error.
pub fn client(gateway: Gateway, options: ClientOptions) -> Result<GatewayClient, Error> {
    let defaults = default_settings(gateway);
    let mut setting = |name: &str| defaults.iter().find(|(named, _)| *named == name).map(|(_, value)| value.clone());
    GatewayClient::from_settings(gateway, &mut setting, options)
}

/// The sandbox's default credentials of `gateway`, by the names of its profile's settings
/// (`GatewayClient::settings`): the one thing here that names each gateway, because the
/// credentials live in otp-sandbox, which knows no profile.
fn default_settings(gateway: Gateway) -> Vec<(&'static str, String)> {
    let text = |value: &str| value.to_owned();
    match gateway {
        Gateway::PhonePe => vec![
            ("merchant_id", text(credentials::PHONEPE_MERCHANT_ID)),
            ("salt_key", text(credentials::PHONEPE_SALT_KEY)),
            ("salt_index", credentials::PHONEPE_SALT_INDEX.to_string()),
        ],
        Gateway::Paytm => vec![
            ("client_id", text(credentials::PAYTM_CLIENT_ID)),
            ("client_secret", text(credentials::PAYTM_CLIENT_SECRET)),
        ],
        Gateway::IServeU => vec![
            ("client_id", text(credentials::ISERVEU_CLIENT_ID)),
            ("client_secret", text(credentials::ISERVEU_CLIENT_SECRET)),
            ("username", text(credentials::ISERVEU_USERNAME)),
        ],
        Gateway::AOPay => vec![("registration_id", text(credentials::AOPAY_REGISTRATION_ID))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name the profile does not ask for would be dropped silently, and a missing one would
    /// leave the sandbox client without a setting it may need.
    #[test]
    fn the_defaults_name_exactly_each_enabled_gateways_settings() {
        for gateway in Gateway::ALL {
            let Some(settings) = GatewayClient::settings(gateway) else { continue };
            let named: Vec<&str> = default_settings(gateway).iter().map(|(name, _)| *name).collect();
            let expected: Vec<&str> = settings.iter().map(|setting| setting.name).collect();
            assert_eq!(named, expected, "{gateway}");
        }
    }
}
