//! What every gateway client is built from: its settings, and where and how it sends.

use crate::http::Transport;
use crate::{Environment, Error, Gateway, HttpOptions, KnownHosts};

/// Where and how a gateway client sends: the environment (or a custom base URL) and the HTTP
/// options. Every gateway's builder takes these through `environment(…)` and `http(…)`, or all
/// at once through `options(…)`.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    environment: Environment,
    http: HttpOptions,
}

impl ClientOptions {
    /// UAT, with the default HTTP options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where requests go (default: the provider's UAT host).
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = environment;
        self
    }

    /// How requests are sent: timeouts, limits, retries, TLS roots.
    pub fn http(mut self, http: HttpOptions) -> Self {
        self.http = http;
        self
    }

    /// The transport of a client of `gateway`, whose documented hosts are `hosts`.
    #[doc(hidden)] // For gateway crates' builders.
    pub fn transport(&self, gateway: Gateway, hosts: &KnownHosts) -> Result<Transport, Error> {
        Transport::for_environment(gateway, &self.environment, hosts, &self.http)
    }
}

/// Declares a gateway client's builder: one optional field and one setter per setting (taking
/// `impl Into<T>`, or `T` itself when the field is marked `= by_value`, which keeps integer
/// literals typed), plus `environment`, `http` and `options`, the same for every gateway. The gateway crate writes `build()`, which checks the settings and calls
/// `self.options.transport(…)`.
///
/// ```
/// otp_core::client_builder! {
///     /// Builds a client.
///     pub struct ExampleClientBuilder {
///         /// The merchant id.
///         merchant_id: String,
///         /// The salt key.
///         salt_key: otp_core::SaltKey,
///         /// The salt index.
///         salt_index: u32 = by_value,
///     }
/// }
/// let builder = ExampleClientBuilder::default().merchant_id("M1").salt_key("k").salt_index(1);
/// assert!(format!("{builder:?}").contains("[redacted]"));
/// ```
#[macro_export]
macro_rules! client_builder {
    (
        $(#[$meta:meta])*
        pub struct $builder:ident {
            $( $(#[$field_meta:meta])* $field:ident : $ty:ty $(= $by_value:ident)? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default)]
        pub struct $builder {
            $( $field: ::core::option::Option<$ty>, )*
            options: $crate::ClientOptions,
        }

        impl $builder {
            $(
                $crate::client_builder!(@setter $(#[$field_meta])* $field: $ty $(= $by_value)?);
            )*

            /// Where requests go: the provider's UAT (default) or production host, or a custom
            /// base URL (the sandbox, a proxy, a host issued at onboarding).
            pub fn environment(mut self, environment: $crate::Environment) -> Self {
                self.options = self.options.environment(environment);
                self
            }

            /// How requests are sent: timeouts, limits, retries, TLS roots.
            pub fn http(mut self, http: $crate::HttpOptions) -> Self {
                self.options = self.options.http(http);
                self
            }

            /// The environment and HTTP options at once.
            pub fn options(mut self, options: $crate::ClientOptions) -> Self {
                self.options = options;
                self
            }
        }
    };
    (@setter $(#[$field_meta:meta])* $field:ident : $ty:ty) => {
        $(#[$field_meta])*
        pub fn $field(mut self, value: impl ::core::convert::Into<$ty>) -> Self {
            self.$field = ::core::option::Option::Some(value.into());
            self
        }
    };
    (@setter $(#[$field_meta:meta])* $field:ident : $ty:ty = by_value) => {
        $(#[$field_meta])*
        pub fn $field(mut self, value: $ty) -> Self {
            self.$field = ::core::option::Option::Some(value);
            self
        }
    };
}
