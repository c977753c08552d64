//! Log output for `otp serve`: one line per request (target `otp_serve::request`) besides the
//! SDK's own events, as text or as JSON (`--log-format json`).

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (the fields at the top level).
    Json,
}

/// The filter used when `RUST_LOG` is not set: the service's request lines and warnings.
pub const DEFAULT_FILTER: &str = "info";

/// A subscriber writing to `writer` (stderr for the CLI; a buffer in tests), filtered by
/// `filter` (`RUST_LOG` syntax).
pub fn subscriber<W>(format: LogFormat, filter: &str, writer: W) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(false);
    match format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(builder.json().flatten_event(true).with_current_span(false).finish()),
    }
}

/// Installs [`subscriber`] on stderr as the process's default, with `RUST_LOG` or
/// [`DEFAULT_FILTER`]. `false` when a subscriber was installed already.
pub fn init_logging(format: LogFormat) -> bool {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| DEFAULT_FILTER.to_owned());
    tracing::subscriber::set_global_default(subscriber(format, &filter, std::io::stderr)).is_ok()
}
