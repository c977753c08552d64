//! Request bodies: flat JSON objects of text fields, written into one buffer.
//!
//! Every gateway's send-OTP body is a flat object of strings (Paytm adds one array of them).
//! Writing it field by field costs a quarter of what a derived `Serialize` costs on the send
//! path: most values need no escaping, and a vectorised scan proves it before a plain copy.
//! A value that does need escaping is written by serde_json itself, so the bytes are always
//! exactly serde_json's (a property test holds the two together).

use crate::Error;

/// A JSON object being written, fields in the order given.
///
/// ```
/// let body = otp_core::json::JsonObject::new()
///     .string("phone", "9876543210")
///     .optional_string("email", None)
///     .string_array("scopes", &["paytm".to_owned()])
///     .finish()?;
/// assert_eq!(body, br#"{"phone":"9876543210","scopes":["paytm"]}"#);
/// # Ok::<(), otp_core::Error>(())
/// ```
#[must_use = "finish() returns the body"]
pub struct JsonObject {
    buffer: Vec<u8>,
    fields: usize,
    failed: Option<serde_json::Error>,
}

impl std::fmt::Debug for JsonObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body holds mobile and identity numbers: only its shape is printed.
        f.debug_struct("JsonObject").field("fields", &self.fields).field("bytes", &self.buffer.len()).finish()
    }
}

impl Default for JsonObject {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonObject {
    /// An empty object, in a buffer sized for a typical send-OTP body.
    pub fn new() -> Self {
        let mut buffer = Vec::with_capacity(512);
        buffer.push(b'{');
        Self { buffer, fields: 0, failed: None }
    }

    /// Adds `"key":"value"`.
    pub fn string(mut self, key: &str, value: &str) -> Self {
        if is_plain(key) && is_plain(value) {
            // The usual field: one capacity check, then straight copies.
            self.buffer.reserve(key.len() + value.len() + 6);
            if self.fields > 0 {
                self.buffer.push(b',');
            }
            self.fields += 1;
            self.buffer.push(b'"');
            self.buffer.extend_from_slice(key.as_bytes());
            self.buffer.extend_from_slice(b"\":\"");
            self.buffer.extend_from_slice(value.as_bytes());
            self.buffer.push(b'"');
            return self;
        }
        self.key(key);
        self.text(value);
        self
    }

    /// Adds `"key":"value"` when there is a value; nothing at all when there is none.
    pub fn optional_string(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.string(key, value),
            None => self,
        }
    }

    /// Adds `"key":["a","b"]`.
    pub fn string_array(mut self, key: &str, values: &[String]) -> Self {
        self.key(key);
        self.buffer.push(b'[');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.buffer.push(b',');
            }
            self.text(value);
        }
        self.buffer.push(b']');
        self
    }

    /// The finished body.
    pub fn finish(mut self) -> Result<Vec<u8>, Error> {
        if let Some(error) = self.failed {
            return Err(Error::invalid_input("the request body could not be serialised").with_source(error));
        }
        self.buffer.push(b'}');
        Ok(self.buffer)
    }

    fn key(&mut self, key: &str) {
        if self.fields > 0 {
            self.buffer.push(b',');
        }
        self.fields += 1;
        self.text(key);
        self.buffer.push(b':');
    }

    fn text(&mut self, value: &str) {
        if is_plain(value) {
            self.buffer.reserve(value.len() + 2);
            self.buffer.push(b'"');
            self.buffer.extend_from_slice(value.as_bytes());
            self.buffer.push(b'"');
        } else if let Err(error) = serde_json::to_writer(&mut self.buffer, value) {
            // Writing a string into a Vec does not fail; if it ever did, finish() says so.
            self.failed.get_or_insert(error);
        }
    }
}

/// Whether the text goes into JSON as it is: serde_json escapes control bytes, `"` and `\`,
/// and nothing else (UTF-8 included).
fn is_plain(text: &str) -> bool {
    !crate::scan::any_byte(text.as_bytes(), 0x20, b"\"\\")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn debug_shows_the_shape_never_the_values() {
        let body = JsonObject::new().string("mobileNumber", "9876543210").string("ovdData", "765386439745");
        let printed = format!("{body:?}");
        assert_eq!(printed, "JsonObject { fields: 2, bytes: 53 }");
        assert!(!printed.contains("3210") && !printed.contains("9745"), "{printed}");
    }

    #[test]
    fn empty_plain_and_escaped() {
        assert_eq!(JsonObject::new().finish().unwrap(), b"{}");
        let body = JsonObject::new().string("a", "b").optional_string("c", None).string_array("d", &[]).finish();
        assert_eq!(body.unwrap(), br#"{"a":"b","d":[]}"#);
        let body = JsonObject::new().string("q\"", "tab\there \\ \u{1} \u{7f} é").finish().unwrap();
        assert_eq!(String::from_utf8(body).unwrap(), "{\"q\\\"\":\"tab\\there \\\\ \\u0001 \u{7f} é\"}");
    }

    fn serde_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
        serde_json::to_string(value).unwrap()
    }

    proptest! {
        /// Byte for byte what serde_json writes for each key and value, whatever the text.
        #[test]
        fn matches_serde_json(
            fields in proptest::collection::vec((any::<String>(), any::<Option<String>>()), 0..6),
            array in proptest::collection::vec(any::<String>(), 0..4),
        ) {
            let mut ours = JsonObject::new();
            let mut expected = Vec::new();
            for (key, value) in &fields {
                ours = ours.optional_string(key, value.as_deref());
                if let Some(value) = value {
                    expected.push(format!("{}:{}", serde_text(key), serde_text(value)));
                }
            }
            ours = ours.string_array("array", &array);
            expected.push(format!("{}:{}", serde_text("array"), serde_text(&array)));
            let ours = String::from_utf8(ours.finish().unwrap()).unwrap();
            prop_assert_eq!(&ours, &format!("{{{}}}", expected.join(",")));
            // And it is JSON that reads back to the same array.
            let parsed: serde_json::Value = serde_json::from_str(&ours).unwrap();
            prop_assert_eq!(&parsed["array"], &serde_json::Value::from(array));
        }

        /// Text made mostly of the bytes that need escaping, in every position of the scan.
        #[test]
        fn escapes_like_serde_json(value in "[a\"\\\\\u{0}\u{1f}\u{7f}é\n]{0,40}") {
            let ours = JsonObject::new().string("k", &value).finish().unwrap();
            prop_assert_eq!(String::from_utf8(ours).unwrap(), format!("{{\"k\":{}}}", serde_text(&value)));
        }
    }
}
