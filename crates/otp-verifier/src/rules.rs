//! The send guard's rules and what a caller tells the guard about a request.

use std::net::IpAddr;
use std::time::Duration;

use otp_core::Error;

/// A rule of the send guard; its name is the `rule` a refusal reports (and a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GuardRule {
    /// The least time between two sends to one number.
    Cooldown,
    /// Sends to one number in the short window (default 5 per hour).
    NumberShortWindow,
    /// Sends to one number in the long window (default 10 per 24 hours).
    NumberLongWindow,
    /// Sends for one client IP address (default 20 per hour).
    ClientIp,
    /// Sends for one caller-chosen key, an account or device (default 10 per hour).
    CallerKey,
}

impl GuardRule {
    /// Every rule, in a stable order (the Redis scripts refer to rules by this index).
    pub const ALL: [GuardRule; 5] = [
        GuardRule::Cooldown,
        GuardRule::NumberShortWindow,
        GuardRule::NumberLongWindow,
        GuardRule::ClientIp,
        GuardRule::CallerKey,
    ];

    /// The stable snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            GuardRule::Cooldown => "cooldown",
            GuardRule::NumberShortWindow => "number_short_window",
            GuardRule::NumberLongWindow => "number_long_window",
            GuardRule::ClientIp => "client_ip",
            GuardRule::CallerKey => "caller_key",
        }
    }
}

/// At most `count` sends in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// How many sends.
    pub count: u32,
    /// In any window this long (sliding, not calendar hours).
    pub window: Duration,
}

impl Limit {
    /// `count` sends per `window`.
    pub const fn new(count: u32, window: Duration) -> Self {
        Self { count, window }
    }
}

const HOUR: Duration = Duration::from_secs(3600);

/// The guard's rules (docs/security.md); every number can be changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GuardRules {
    /// Least time between two sends to one number (default 30 s; zero turns it off).
    pub cooldown: Duration,
    /// Sends to one number, short window (default 5 per hour).
    pub number_short_window: Limit,
    /// Sends to one number, long window (default 10 per 24 h).
    pub number_long_window: Limit,
    /// Sends per client IP (default 20 per hour).
    pub per_client_ip: Limit,
    /// Sends per caller key (default 10 per hour).
    pub per_caller_key: Limit,
    /// Wrong codes a session takes before it is spent (default 5).
    pub max_wrong_tries: u32,
    /// How many leading bits of an IPv6 client address the per-IP limit keys on (default 64,
    /// 48 to 128): one subscriber is usually given a whole /64, so counting exact addresses
    /// would give each subscriber 2^64 quotas. IPv4-mapped IPv6 addresses count as IPv4.
    pub ipv6_prefix: u8,
}

impl Default for GuardRules {
    fn default() -> Self {
        Self {
            cooldown: Duration::from_secs(30),
            number_short_window: Limit::new(5, HOUR),
            number_long_window: Limit::new(10, 24 * HOUR),
            per_client_ip: Limit::new(20, HOUR),
            per_caller_key: Limit::new(10, HOUR),
            max_wrong_tries: 5,
            ipv6_prefix: 64,
        }
    }
}

impl GuardRules {
    /// Sets the cooldown.
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Sets the short-window limit per number.
    pub fn number_short_window(mut self, limit: Limit) -> Self {
        self.number_short_window = limit;
        self
    }

    /// Sets the long-window limit per number.
    pub fn number_long_window(mut self, limit: Limit) -> Self {
        self.number_long_window = limit;
        self
    }

    /// Sets the limit per client IP.
    pub fn per_client_ip(mut self, limit: Limit) -> Self {
        self.per_client_ip = limit;
        self
    }

    /// Sets the limit per caller key.
    pub fn per_caller_key(mut self, limit: Limit) -> Self {
        self.per_caller_key = limit;
        self
    }

    /// Sets how many wrong codes a session takes.
    pub fn max_wrong_tries(mut self, tries: u32) -> Self {
        self.max_wrong_tries = tries;
        self
    }

    /// Sets how many leading bits of an IPv6 address the per-IP limit keys on (48 to 128).
    pub fn ipv6_prefix(mut self, bits: u8) -> Self {
        self.ipv6_prefix = bits;
        self
    }

    /// The address the per-IP limit counts `ip` as: IPv4-mapped IPv6 as its IPv4 address, any
    /// other IPv6 address cut to its first `ipv6_prefix` bits.
    pub(crate) fn client_subject(&self, ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => {
                let bits = u32::from(self.ipv6_prefix.clamp(48, 128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & mask))
            }
        }
    }

    /// The limits that apply to one subject: a cooldown is "1 send per cooldown".
    pub(crate) fn limits_for(&self, subject: Subject) -> Vec<(GuardRule, Limit)> {
        match subject {
            Subject::Number => {
                let mut limits = Vec::with_capacity(3);
                if !self.cooldown.is_zero() {
                    limits.push((GuardRule::Cooldown, Limit::new(1, self.cooldown)));
                }
                limits.push((GuardRule::NumberShortWindow, self.number_short_window));
                limits.push((GuardRule::NumberLongWindow, self.number_long_window));
                limits
            }
            Subject::ClientIp => vec![(GuardRule::ClientIp, self.per_client_ip)],
            Subject::CallerKey => vec![(GuardRule::CallerKey, self.per_caller_key)],
        }
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        let limits = [self.number_short_window, self.number_long_window, self.per_client_ip, self.per_caller_key];
        if limits.iter().any(|l| l.window.is_zero() || l.window > 31 * 24 * HOUR) {
            return Err(Error::configuration("a guard window must be between 1 ms and 31 days"));
        }
        if self.cooldown > 24 * HOUR {
            return Err(Error::configuration("the cooldown must be at most 24 hours"));
        }
        if !(48..=128).contains(&self.ipv6_prefix) {
            return Err(Error::configuration("the IPv6 prefix of the per-IP limit must be 48 to 128 bits"));
        }
        if limits.iter().any(|l| l.count > 10_000) {
            return Err(Error::configuration("a guard limit must be at most 10,000 sends per window"));
        }
        Ok(())
    }
}

/// What a send is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subject {
    Number,
    ClientIp,
    CallerKey,
}

/// What the guard keys on besides the number: the client's IP address, and optionally a
/// caller-chosen key such as an account or device id. `Debug` shows neither.
#[derive(Clone, PartialEq, Eq)]
pub struct Context {
    pub(crate) client_ip: IpAddr,
    pub(crate) caller_key: Option<Box<str>>,
    pub(crate) idempotency_key: Option<Box<str>>,
    pub(crate) tenant: Option<Box<str>>,
}

impl Context {
    /// A request from this client address (the end customer's, not a proxy's).
    pub fn new(client_ip: IpAddr) -> Self {
        Self { client_ip, caller_key: None, idempotency_key: None, tenant: None }
    }

    /// Also counts the send against this key (at most 256 characters; compared exactly).
    pub fn caller_key(mut self, key: impl Into<String>) -> Result<Self, Error> {
        let key = key.into();
        if key.is_empty() || key.len() > 256 {
            return Err(Error::invalid_input("a caller key must be 1 to 256 bytes"));
        }
        self.caller_key = Some(key.into_boxed_str());
        Ok(self)
    }
}

impl Context {
    /// Makes the call idempotent under this key (1 to 255 printable ASCII characters, as the
    /// caller's `Idempotency-Key`): a retried start or resend with the same key answers the
    /// first call's result — the same id, no second SMS — on any instance sharing the store,
    /// for 24 hours. The same key with another request is refused as `invalid_request`; while
    /// the first call runs, a retry is refused as retryable `rate_limited`, nothing sent; and
    /// once a first call's process died unfinished (its 2-minute lease ran out), every retry
    /// is refused as `invalid_request` that may have sent — never run again.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Result<Self, Error> {
        let key = key.into();
        if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(Error::invalid_input("an idempotency key must be 1 to 255 printable ASCII characters"));
        }
        self.idempotency_key = Some(key.into_boxed_str());
        Ok(self)
    }

    /// Labels the verification a start begins with the application's tenant (1 to 64 letters,
    /// digits, `-`, `_` or `.`): its record keeps it, and every event of the verification
    /// carries it (`Event::tenant`), so that events can be routed per tenant (webhooks). Not a
    /// guard subject, and a resend keeps the start's.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Result<Self, Error> {
        let tenant = tenant.into();
        let plain = tenant.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if tenant.is_empty() || tenant.len() > 64 || !plain {
            return Err(Error::invalid_input("a tenant is 1 to 64 letters, digits, -, _ or ."));
        }
        self.tenant = Some(tenant.into_boxed_str());
        Ok(self)
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("client_ip", &"[redacted]")
            .field("caller_key", &self.caller_key.as_ref().map(|_| "[redacted]"))
            .field("idempotency_key", &self.idempotency_key.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_limits_out_of_range_are_refused_as_configuration() {
        assert!(GuardRules::default().check().is_ok());
        let zero = GuardRules::default().per_client_ip(Limit::new(20, Duration::ZERO));
        assert!(zero.check().unwrap_err().is_configuration());
        let longest = GuardRules::default().number_long_window(Limit::new(10, 31 * 24 * HOUR));
        assert!(longest.check().is_ok());
        let long = GuardRules::default().number_long_window(Limit::new(10, 31 * 24 * HOUR + Duration::from_millis(1)));
        assert!(long.check().is_err());
        assert!(GuardRules::default().cooldown(24 * HOUR).check().is_ok());
        assert!(GuardRules::default().cooldown(24 * HOUR + Duration::from_millis(1)).check().is_err());
        assert!(GuardRules::default().per_caller_key(Limit::new(10_000, HOUR)).check().is_ok());
        assert!(GuardRules::default().per_caller_key(Limit::new(10_001, HOUR)).check().is_err());
    }

    #[test]
    fn a_client_counts_as_its_ipv4_address_or_its_ipv6_prefix() {
        let rules = GuardRules::default();
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert_eq!(rules.client_subject(ip("::ffff:203.0.113.9")), ip("203.0.113.9"));
        assert_eq!(rules.client_subject(ip("203.0.113.9")), ip("203.0.113.9"));
        assert_eq!(rules.client_subject(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")), ip("2001:db8:1:2::"));
        assert_eq!(rules.client_subject(ip("2001:db8:1:2::1")), rules.client_subject(ip("2001:db8:1:2:ffff::")));
        assert_ne!(rules.client_subject(ip("2001:db8:1:2::1")), rules.client_subject(ip("2001:db8:1:3::1")));
        let exact = GuardRules::default().ipv6_prefix(128);
        assert_eq!(exact.client_subject(ip("2001:db8::1")), ip("2001:db8::1"));
        let wide = GuardRules::default().ipv6_prefix(48);
        assert_eq!(wide.client_subject(ip("2001:db8:1:ffff::1")), ip("2001:db8:1::"));
        for bits in [48, 64, 128] {
            assert!(GuardRules::default().ipv6_prefix(bits).check().is_ok(), "{bits}");
        }
        for bits in [0, 47, 129] {
            assert!(GuardRules::default().ipv6_prefix(bits).check().unwrap_err().is_configuration(), "{bits}");
        }
    }

    #[test]
    fn every_rule_stands_at_its_own_place_in_all() {
        for (index, rule) in GuardRule::ALL.into_iter().enumerate() {
            assert_eq!(rule as usize, index, "{}", rule.as_str());
        }
    }

    #[test]
    fn a_zero_cooldown_is_no_rule_and_the_number_rules_come_in_order() {
        let rules = GuardRules::default();
        let names: Vec<&str> = rules.limits_for(Subject::Number).iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(names, ["cooldown", "number_short_window", "number_long_window"]);
        assert_eq!(rules.limits_for(Subject::Number)[0].1, Limit::new(1, Duration::from_secs(30)));
        let names: Vec<GuardRule> =
            rules.cooldown(Duration::ZERO).limits_for(Subject::Number).iter().map(|(r, _)| *r).collect();
        assert_eq!(names, [GuardRule::NumberShortWindow, GuardRule::NumberLongWindow]);
    }

    #[test]
    fn a_context_hides_its_address_and_key_and_refuses_an_empty_or_long_key() {
        let context = Context::new("198.51.100.4".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))).caller_key("acct-9");
        let rendered = format!("{:?}", context.as_ref().ok());
        assert!(!rendered.contains("198.51") && !rendered.contains("acct-9"), "{rendered}");
        assert!(Context::new(IpAddr::from([1, 2, 3, 4])).caller_key("").is_err());
        assert!(Context::new(IpAddr::from([1, 2, 3, 4])).caller_key("k".repeat(256)).is_ok());
        assert!(Context::new(IpAddr::from([1, 2, 3, 4])).caller_key("k".repeat(257)).is_err());
        let ip = IpAddr::from([1, 2, 3, 4]);
        assert!(Context::new(ip).idempotency_key("k".repeat(255)).is_ok());
        assert!(Context::new(ip).idempotency_key("retry 7").is_ok());
        for bad in [String::new(), "k".repeat(256), "tab\t".to_owned(), "é".to_owned()] {
            assert!(
                Context::new(ip).idempotency_key(bad.clone()).unwrap_err().kind()
                    == otp_core::ErrorKind::InvalidRequest,
                "{bad:?}"
            );
        }
        let keyed = Context::new(ip).idempotency_key("order-42").unwrap();
        assert!(!format!("{keyed:?}").contains("order-42"));
    }
}
