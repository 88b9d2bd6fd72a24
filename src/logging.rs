//! Logging setup: one subscriber on stderr, for people or for machines.
//!
//! * `pretty` (the default): human-readable lines, coloured only when stderr
//!   is a terminal and `NO_COLOR` is unset or empty (<https://no-color.org>).
//!   The journal, a pipe or a file never gets escape codes.
//! * `json`: one object per event, with `timestamp`, `level`, `target`,
//!   `message` and the event's fields all at the top level (not nested under
//!   `fields`), and no `span`/`spans` lists that would repeat the same
//!   context on every line. Log shippers index top-level keys.
//!
//! `RUST_LOG` wins over `[log] level`.

use std::ffi::OsStr;
use std::io::IsTerminal;

use tracing_subscriber::fmt::format::{DefaultFields, Format, Full, Json, JsonFields};
use tracing_subscriber::fmt::{MakeWriter, Subscriber};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::progress::LogWriter;

/// Whether the pretty format should colour its output: only for a person
/// at a terminal who has not asked for no colour. JSON is never coloured.
pub(crate) fn use_colour(
    stderr_is_terminal: bool,
    no_color: Option<&OsStr>,
    format: LogFormat,
) -> bool {
    // NO_COLOR counts when present and non-empty.
    let no_color = no_color.is_some_and(|v| !v.is_empty());
    format != LogFormat::Json && stderr_is_terminal && !no_color
}

/// The human-readable subscriber writing to `writer`.
pub(crate) fn pretty_subscriber<W>(
    filter: EnvFilter,
    colour: bool,
    writer: W,
) -> Subscriber<DefaultFields, Format<Full>, EnvFilter, W>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(writer)
        .finish()
}

/// The JSON subscriber writing to `writer`: flat objects, no span lists.
pub(crate) fn json_subscriber<W>(
    filter: EnvFilter,
    writer: W,
) -> Subscriber<JsonFields, Format<Json>, EnvFilter, W>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_ansi(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}

/// Install the process's subscriber on stderr (`format`: the config's
/// `[log] format`, taken by reference as the commands hold the settings). A second call is a no-op.
/// Lines go through [`LogWriter`], which pauses a live progress bar so a
/// log line never lands inside it.
pub(crate) fn init_logging(level: &str, format: &LogFormat) {
    let format = *format;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = if format == LogFormat::Json {
        tracing::subscriber::set_global_default(json_subscriber(filter, LogWriter))
    } else {
        let colour = use_colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
            format,
        );
        tracing::subscriber::set_global_default(pretty_subscriber(filter, colour, LogWriter))
    };
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn colour_only_for_a_terminal_without_no_color_and_never_in_json() {
        let empty = OsStr::new("");
        let one = OsStr::new("1");
        assert!(use_colour(true, None, LogFormat::Pretty));
        assert!(
            use_colour(true, Some(empty), LogFormat::Pretty),
            "empty NO_COLOR is unset"
        );
        assert!(!use_colour(true, Some(one), LogFormat::Pretty));
        assert!(!use_colour(false, None, LogFormat::Pretty));
        assert!(!use_colour(false, Some(one), LogFormat::Pretty));
        assert!(!use_colour(true, None, LogFormat::Json));
        assert!(!use_colour(false, None, LogFormat::Json));
    }

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    #[test]
    fn json_events_inside_a_span_are_flat_without_span_lists() {
        let buf = Buf::default();
        let sub = json_subscriber(EnvFilter::new("info"), buf.clone());
        tracing::subscriber::with_default(sub, || {
            let span = tracing::info_span!("cliq_request", endpoint = "list_users");
            let _in = span.enter();
            tracing::info!(wait_ms = 29_500u64, reason = "quota", "waiting 29.5s");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        let o = v.as_object().unwrap();
        for key in [
            "timestamp",
            "level",
            "target",
            "message",
            "wait_ms",
            "reason",
        ] {
            assert!(o.contains_key(key), "no {key}: {text}");
        }
        for key in ["fields", "span", "spans"] {
            assert!(!o.contains_key(key), "{key} in {text}");
        }
        assert_eq!(v["wait_ms"], 29_500);
        assert!(!text.contains('\u{1b}'), "{text:?}");
    }

    #[test]
    fn pretty_without_colour_has_no_escape_codes() {
        let buf = Buf::default();
        let sub = pretty_subscriber(EnvFilter::new("info"), false, buf.clone());
        tracing::subscriber::with_default(sub, || tracing::warn!(endpoint = "x", "hello"));
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains("hello") && text.contains("endpoint=\"x\""),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'), "{text:?}");
    }
}
