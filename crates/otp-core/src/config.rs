//! Helpers every gateway builder uses to check its configuration before anything is sent.

use crate::Error;

/// Collects every missing required setting, so one error names them all.
#[derive(Debug, Default)]
pub struct RequiredSettings {
    missing: Vec<&'static str>,
}

impl RequiredSettings {
    /// No setting checked yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A required text setting: absent or blank counts as missing.
    pub fn text(&mut self, name: &'static str, value: Option<String>) -> String {
        match value {
            Some(value) if !value.trim().is_empty() => value,
            _ => {
                self.missing.push(name);
                String::new()
            }
        }
    }

    /// A required secret (a [`SecretString`](crate::SecretString) or a role type such as
    /// [`SaltKey`](crate::SaltKey)): absent or empty counts as missing.
    pub fn secret<T: Default>(&mut self, name: &'static str, value: Option<T>, is_empty: fn(&T) -> bool) -> T {
        match value {
            Some(value) if !is_empty(&value) => value,
            _ => {
                self.missing.push(name);
                T::default()
            }
        }
    }

    /// A required value of any other type.
    pub fn value<T: Default>(&mut self, name: &'static str, value: Option<T>) -> T {
        value.unwrap_or_else(|| {
            self.missing.push(name);
            T::default()
        })
    }

    /// A configuration error naming every missing setting, if any is.
    pub fn finish(self, gateway: crate::Gateway) -> Result<(), Error> {
        if self.missing.is_empty() {
            Ok(())
        } else {
            Err(Error::configuration(format!("{gateway} client is missing: {}", self.missing.join(", ")))
                .with_gateway(gateway))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Gateway;

    #[test]
    fn names_every_missing_setting() {
        let mut required = RequiredSettings::new();
        let _ = required.text("merchant id", Some("  ".into()));
        let _ = required.secret("salt key", None, crate::SaltKey::is_empty);
        let kept = required.text("client id", Some("abc".into()));
        let _ = required.value::<u32>("salt index", None);
        assert_eq!(kept, "abc");
        let error = required.finish(Gateway::PhonePe).unwrap_err();
        assert!(error.is_configuration());
        assert_eq!(error.description(), "phonepe client is missing: merchant id, salt key, salt index");
    }
}
