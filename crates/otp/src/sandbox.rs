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
    #[allow(unreachable_patterns)] // With every gateway enabled, the fallback arm cannot match.
    let client: GatewayClient = match gateway {
        #[cfg(feature = "phonepe")]
        Gateway::PhonePe => otp_phonepe::PhonePeClient::builder()
            .merchant_id(credentials::PHONEPE_MERCHANT_ID)
            .salt_key(credentials::PHONEPE_SALT_KEY)
            .salt_index(credentials::PHONEPE_SALT_INDEX)
            .options(options)
            .build()?
            .into(),
        #[cfg(feature = "paytm")]
        Gateway::Paytm => otp_paytm::PaytmClient::builder()
            .client_id(credentials::PAYTM_CLIENT_ID)
            .client_secret(credentials::PAYTM_CLIENT_SECRET)
            .options(options)
            .build()?
            .into(),
        #[cfg(feature = "iserveu")]
        Gateway::IServeU => otp_iserveu::IServeUClient::builder()
            .client_id(credentials::ISERVEU_CLIENT_ID)
            .client_secret(credentials::ISERVEU_CLIENT_SECRET)
            .username(credentials::ISERVEU_USERNAME)
            .options(options)
            .build()?
            .into(),
        #[cfg(feature = "aopay")]
        Gateway::AOPay => otp_aopay::AOPayClient::builder()
            .registration_id(credentials::AOPAY_REGISTRATION_ID)
            .options(options)
            .build()?
            .into(),
        other => return Err(Error::configuration(format!("the {other} feature of otp is not enabled"))),
    };
    Ok(client)
}
