//! The log format, shared by the binary, the tests and the load benchmark so
//! that what is tested and measured is what runs: one JSON object per line,
//! `{"timestamp", "level", "target", "fields": {…}, "span": {"name", …}}`,
//! where `span` is the innermost span (for a request: its request id).
//!
//! The lines are written by `JsonLines` rather than tracing-subscriber's own
//! JSON format, which gathers each event's fields into a map and parses the
//! span's stored fields back out of JSON for every line; the access line is
//! written once per request, and that formatter was over a quarter of the
//! whole middleware stack's time (`examples/load.rs`). The shape is the same.
//!
//! Levels are chosen by a static `target=level` filter (`Targets`), not by
//! `EnvFilter`: `EnvFilter` takes a lock on every span enter and exit to
//! support span-field directives, and the request span is entered at every
//! poll of the request's future; under load on two cores that lock alone
//! showed in the service's CPU time per request.

use std::fmt::{self, Write as _};
use std::str::FromStr as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;

/// The filter `spec` describes (`info`, `service=debug,hyper=warn`, …): the
/// same syntax as `RUST_LOG` without span directives. `None` means `info`.
pub fn filter(spec: Option<&str>) -> Result<Targets, String> {
    match spec.map(str::trim) {
        None | Some("") => Ok(Targets::new().with_default(LevelFilter::INFO)),
        Some(spec) => Targets::from_str(spec).map_err(|err| {
            format!("invalid log filter `{spec}`: {err}; use `info` or `target=level,…`")
        }),
    }
}

/// A subscriber writing JSON lines to `writer`, for the events `filter`
/// lets through.
pub fn subscriber<W>(filter: Targets, writer: W) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .fmt_fields(JsonMembers)
        .event_format(JsonLines)
        .with_max_level(LevelFilter::TRACE)
        .with_writer(writer)
        .finish()
        .with(filter)
}

/// The event format: one JSON object per line. Span fields are stored by
/// `JsonFields` as a JSON object, which is copied into the line as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S> FormatEvent<S, JsonMembers> for JsonLines
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonMembers>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        write!(
            writer,
            "{{\"timestamp\":\"{}\",\"level\":\"{}\",\"target\":",
            jiff::Timestamp::now(),
            metadata.level()
        )?;
        write_json_str(&mut writer, metadata.target())?;
        writer.write_str(",\"fields\":{")?;
        let mut fields = FieldWriter {
            out: &mut writer,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('}')?;

        if let Some(span) = ctx.lookup_current() {
            writer.write_str(",\"span\":{\"name\":")?;
            write_json_str(&mut writer, span.name())?;
            let extensions = span.extensions();
            let stored = extensions
                .get::<FormattedFields<JsonMembers>>()
                .map(|fields| fields.fields.as_str())
                .unwrap_or_default();
            if !stored.is_empty() {
                writer.write_char(',')?;
                writer.write_str(stored)?;
            }
            writer.write_char('}')?;
        }
        writer.write_str("}\n")
    }
}

/// How span fields are stored: JSON members without the braces
/// (`"request_id":"…"`), so `JsonLines` copies them into each line as they
/// are, and a field recorded later is appended after a comma.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonMembers;

impl<'writer> FormatFields<'writer> for JsonMembers {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut members = FieldWriter {
            out: &mut writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut members);
        members.result
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let first = current.fields.is_empty();
        let mut writer = current.as_writer();
        let mut members = FieldWriter {
            out: &mut writer,
            first,
            result: Ok(()),
        };
        fields.record(&mut members);
        members.result
    }
}

/// Writes an event's fields as JSON members.
struct FieldWriter<'out, 'writer> {
    out: &'out mut Writer<'writer>,
    first: bool,
    result: fmt::Result,
}

impl FieldWriter<'_, '_> {
    fn member(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            if !std::mem::take(&mut self.first) {
                self.out.write_char(',')?;
            }
            write_json_str(self.out, field.name())?;
            self.out.write_char(':')?;
            value(self.out)
        })();
    }
}

impl Visit for FieldWriter<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |out| write_json_str(out, value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |out| write!(out, "{value}"));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |out| write!(out, "{value}"));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |out| write!(out, "{value}"));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity.
        if value.is_finite() {
            self.member(field, |out| write!(out, "{value}"));
        } else {
            self.member(field, |out| out.write_str("null"));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |out| {
            out.write_char('"')?;
            write!(Escaper(out), "{value:?}")?;
            out.write_char('"')
        });
    }
}

/// `text` as a JSON string, quotes included.
fn write_json_str(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaper(&mut *out).write_str(text)?;
    out.write_char('"')
}

/// Escapes what it is given for the inside of a JSON string: quotes,
/// backslashes and control characters (RFC 8259, section 7). Everything else
/// passes through in runs, unchanged.
struct Escaper<'out, W: fmt::Write>(&'out mut W);

impl<W: fmt::Write> fmt::Write for Escaper<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        // Most text (targets, routes, ids) needs no escaping: one pass to
        // find out, then one write.
        if !text
            .bytes()
            .any(|byte| byte < 0x20 || matches!(byte, b'"' | b'\\' | 0x7f))
        {
            return self.0.write_str(text);
        }
        let mut start = 0;
        for (at, byte) in text.bytes().enumerate() {
            let escaped = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..0x20 | 0x7f => "",
                _ => continue,
            };
            self.0.write_str(&text[start..at])?;
            if escaped.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escaped)?;
            }
            start = at + 1;
        }
        self.0.write_str(&text[start..])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    fn escaped(text: &str) -> String {
        let mut out = String::new();
        write_json_str(&mut out, text).unwrap();
        out
    }

    #[test]
    fn escapes_what_json_requires() {
        assert_eq!(escaped("plain"), r#""plain""#);
        assert_eq!(escaped("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(escaped("l1\nl2\t\r"), r#""l1\nl2\t\r""#);
        assert_eq!(escaped("\u{1}\u{7f}é"), r#""\u0001\u007fé""#);
    }

    proptest! {
        #[test]
        fn any_text_round_trips_through_json(text in any::<String>()) {
            let parsed: String = serde_json::from_str(&escaped(&text)).unwrap();
            prop_assert_eq!(parsed, text);
        }
    }

    #[test]
    fn lines_are_json_with_fields_and_the_span() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = {
            let buffer = buffer.clone();
            move || buffer.clone()
        };
        let subscriber = subscriber(filter(Some("debug")).unwrap(), writer);
        tracing::subscriber::with_default(subscriber, || {
            let span =
                tracing::info_span!("request", request_id = "r-1", late = tracing::field::Empty);
            span.record("late", 7u64);
            {
                let _entered = span.enter();
                tracing::info!(
                    status = 200u64,
                    latency_ms = 1.5,
                    user = "u\"1",
                    ok = true,
                    "done"
                );
                tracing::debug!(ratio = f64::NAN, "odd");
                tracing::trace!("filtered out");
            }
            tracing::warn!("outside");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["fields"]["message"], "done");
        assert_eq!(lines[0]["fields"]["status"], 200);
        assert_eq!(lines[0]["fields"]["latency_ms"], 1.5);
        assert_eq!(lines[0]["fields"]["user"], "u\"1");
        assert_eq!(lines[0]["fields"]["ok"], true);
        assert_eq!(lines[0]["span"]["name"], "request");
        assert_eq!(lines[0]["span"]["request_id"], "r-1");
        assert_eq!(
            lines[0]["span"]["late"], 7,
            "a field recorded later joins the span"
        );
        assert!(lines[0]["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(lines[1]["fields"]["ratio"].is_null());
        assert_eq!(lines[2]["fields"]["message"], "outside");
        assert!(lines[2].get("span").is_none(), "{}", lines[2]);
    }

    #[test]
    fn filters_parse_or_say_why_not() {
        assert!(filter(None).is_ok());
        assert!(filter(Some("service=debug,hyper=warn")).is_ok());
        let err = filter(Some("service=loud")).unwrap_err();
        assert!(err.contains("service=loud"), "{err}");
    }
}
