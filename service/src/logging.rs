//! The log format, shared by the binary, the tests and the load benchmark so
//! that what is tested and measured is what runs: one JSON object per line,
//! `{"timestamp", "level", "target", "fields": {…}, "span": {"name", …}}`,
//! where `span` is the innermost span (for a request: its request id) and
//! `timestamp` is UTC with microseconds.
//!
//! The lines are written by `JsonLines`, a layer of its own on tracing's
//! registry, rather than tracing-subscriber's JSON format: that one gathers
//! each event's fields into a map and parses the span's stored fields back
//! out of JSON for every line, and its general `fmt` layer grows each span's
//! field text from an empty string. The access line is written once per
//! request and its span opened once per request, so both sit on the path
//! the load benchmark (`examples/load.rs`) measures. The shape is the same.
//!
//! Levels are chosen by a static `target=level` filter (`Targets`), not by
//! `EnvFilter`: `EnvFilter` takes a lock on every span enter and exit to
//! support span-field directives, and the request span is entered at every
//! poll of the request's future; under load on two cores that lock alone
//! showed in the service's CPU time per request.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::str::FromStr as _;
use std::time::{Duration, SystemTime};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

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
    tracing_subscriber::registry()
        .with(JsonLines { writer })
        .with(filter)
}

/// The layer that writes the lines: each event as one JSON object, in one
/// write to `writer`. A span's fields are kept as JSON members, written as
/// the span opens and copied into each line written inside it.
#[derive(Debug)]
pub struct JsonLines<W> {
    writer: W,
}

/// A span's fields as JSON members without the braces (`"request_id":"…"`);
/// a field recorded later is appended after a comma.
#[derive(Debug)]
struct SpanFields(String);

/// Room for the request span's fields (`"request_id":"` and 32 to 64
/// characters), so they are written into one allocation.
const SPAN_FIELDS_CAPACITY: usize = 96;

/// A line buffer that grew past this (a long error detail) is not kept.
const LINE_CAPACITY_KEPT: usize = 16 * 1024;

impl<S, W> Layer<S> for JsonLines<W>
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    W: for<'writer> MakeWriter<'writer> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut members = String::with_capacity(SPAN_FIELDS_CAPACITY);
        attrs.record(&mut FieldWriter::new(&mut members, true));
        span.extensions_mut().insert(SpanFields(members));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(members)) = extensions.get_mut::<SpanFields>() {
            let first = members.is_empty();
            values.record(&mut FieldWriter::new(members, first));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        thread_local! {
            static LINE: RefCell<String> = RefCell::new(String::with_capacity(512));
        }
        LINE.with(|kept| {
            // An event logged while this thread is writing a line (by the
            // writer itself) gets a buffer of its own.
            let mut own = String::new();
            let mut borrowed = kept.try_borrow_mut();
            let line = match borrowed {
                Ok(ref mut kept) => &mut **kept,
                Err(_) => &mut own,
            };
            line.clear();
            write_line(line, event, ctx.lookup_current());
            // A log line that cannot be written is dropped: logging never
            // fails the request it describes.
            let _dropped = self
                .writer
                .make_writer_for(event.metadata())
                .write_all(line.as_bytes());
            if line.capacity() > LINE_CAPACITY_KEPT {
                *line = String::with_capacity(512);
            }
        });
    }
}

/// `event` as one JSON line, with `span`'s name and fields.
fn write_line<S>(line: &mut String, event: &Event<'_>, span: Option<SpanRef<'_, S>>)
where
    S: for<'lookup> LookupSpan<'lookup>,
{
    let metadata = event.metadata();
    line.push_str("{\"timestamp\":\"");
    write_timestamp(line, SystemTime::now());
    line.push_str("\",\"level\":\"");
    line.push_str(metadata.level().as_str());
    line.push_str("\",\"target\":");
    write_json_str(line, metadata.target());
    line.push_str(",\"fields\":{");
    event.record(&mut FieldWriter::new(line, true));
    line.push('}');
    if let Some(span) = span {
        line.push_str(",\"span\":{\"name\":");
        write_json_str(line, span.name());
        if let Some(SpanFields(members)) = span.extensions().get::<SpanFields>()
            && !members.is_empty()
        {
            line.push(',');
            line.push_str(members);
        }
        line.push('}');
    }
    line.push_str("}\n");
}

/// `now` as RFC 3339 in UTC with microseconds: `2026-12-04T09:09:33.608123Z`.
/// The date and time of day change once a second; each thread formats them
/// once per second and writes only the microseconds for each line.
fn write_timestamp(line: &mut String, now: SystemTime) {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let since_epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let second = since_epoch.as_secs();
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            let formatted = i64::try_from(second)
                .ok()
                .and_then(|second| jiff::Timestamp::from_second(second).ok())
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
                .strftime("%Y-%m-%dT%H:%M:%S")
                .to_string();
            *cached = (second, formatted);
        }
        line.push_str(&cached.1);
    });
    let mut digits = itoa::Buffer::new();
    let micros = digits.format(since_epoch.subsec_micros());
    line.push('.');
    for _ in micros.len()..6 {
        line.push('0');
    }
    line.push_str(micros);
    line.push('Z');
}

/// Writes fields as JSON members into a string.
struct FieldWriter<'out> {
    out: &'out mut String,
    first: bool,
}

impl<'out> FieldWriter<'out> {
    /// Members appended to `out`; `first` when `out` holds none yet.
    fn new(out: &'out mut String, first: bool) -> Self {
        Self { out, first }
    }

    /// The member's name and colon, after a comma unless it is the first.
    fn name(&mut self, field: &Field) -> &mut String {
        if !std::mem::take(&mut self.first) {
            self.out.push(',');
        }
        write_json_str(self.out, field.name());
        self.out.push(':');
        self.out
    }
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        write_json_str(self.name(field), value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.name(field)
            .push_str(if value { "true" } else { "false" });
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.name(field).push_str(itoa::Buffer::new().format(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.name(field).push_str(itoa::Buffer::new().format(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity.
        let mut digits = zmij::Buffer::new();
        let text = if value.is_finite() {
            digits.format_finite(value)
        } else {
            "null"
        };
        self.name(field).push_str(text);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let out = self.name(field);
        out.push('"');
        // Writing into a string fails only if the value's own `Debug`
        // does; what it wrote is kept and the string is closed regardless.
        let _partial = write!(Escaper(&mut *out), "{value:?}");
        out.push('"');
    }
}

/// `text` as a JSON string, quotes included.
fn write_json_str(out: &mut String, text: &str) {
    out.push('"');
    escape_into(out, text);
    out.push('"');
}

/// Escapes `text` for the inside of a JSON string: quotes, backslashes and
/// control characters (RFC 8259, section 7). Everything else passes through
/// in runs, unchanged.
fn escape_into(out: &mut String, text: &str) {
    // Most text (targets, routes, ids) needs no escaping: one pass to find
    // out, then one copy.
    if !needs_escape(text.as_bytes()) {
        out.push_str(text);
        return;
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
        out.push_str(&text[start..at]);
        if escaped.is_empty() {
            out.push_str("\\u00");
            out.push_str(&hex::encode([byte]));
        } else {
            out.push_str(escaped);
        }
        start = at + 1;
    }
    out.push_str(&text[start..]);
}

/// Whether any byte of `bytes` must be escaped in a JSON string. Sixteen
/// bytes at a time with no early exit inside a block, which the compiler
/// turns into a few vector compares per block; every log line passes its
/// target, field names and values through here.
fn needs_escape(bytes: &[u8]) -> bool {
    let escaped = |byte: u8| (byte < 0x20) | (byte == b'"') | (byte == b'\\') | (byte == 0x7f);
    let mut blocks = bytes.chunks_exact(16);
    for block in &mut blocks {
        if block.iter().fold(false, |seen, &byte| seen | escaped(byte)) {
            return true;
        }
    }
    blocks.remainder().iter().any(|&byte| escaped(byte))
}

/// A `fmt::Write` that escapes what it is given (for `Debug` values).
struct Escaper<'out>(&'out mut String);

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        escape_into(self.0, text);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    fn escaped(text: &str) -> String {
        let mut out = String::new();
        write_json_str(&mut out, text);
        out
    }

    #[test]
    fn finds_what_needs_escaping_anywhere_in_a_block() {
        for len in [0, 1, 15, 16, 17, 40] {
            let clean = "a".repeat(len);
            assert!(!needs_escape(clean.as_bytes()), "{len}");
            for at in 0..len {
                for bad in [b'"', b'\\', b'\n', 0x01, 0x1f, 0x7f] {
                    let mut bytes = clean.clone().into_bytes();
                    bytes[at] = bad;
                    assert!(needs_escape(&bytes), "{len} {at} {bad}");
                }
            }
        }
        assert!(!needs_escape("é ~ {} é".as_bytes()));
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
    fn timestamps_are_utc_with_microseconds() {
        let at = |secs: u64, micros: u32| {
            let mut line = String::new();
            write_timestamp(
                &mut line,
                SystemTime::UNIX_EPOCH + Duration::new(secs, micros * 1000 + 999),
            );
            line
        };
        // The same thread, one second after another and back: the cached
        // date and time of day follow.
        assert_eq!(at(1_796_375_373, 608_123), "2026-12-04T09:09:33.608123Z");
        assert_eq!(at(1_796_375_373, 42), "2026-12-04T09:09:33.000042Z");
        assert_eq!(at(1_796_375_374, 0), "2026-12-04T09:09:34.000000Z");
        assert_eq!(at(0, 999_999), "1970-01-01T00:00:00.999999Z");
        assert_eq!(at(1_796_375_373, 1), "2026-12-04T09:09:33.000001Z");
        // And it is RFC 3339, as a parser reads it.
        let parsed: jiff::Timestamp = at(1_796_375_373, 5).parse().unwrap();
        assert_eq!(parsed.as_microsecond(), 1_796_375_373_000_005);
    }

    #[test]
    fn filters_parse_or_say_why_not() {
        assert!(filter(None).is_ok());
        assert!(filter(Some("service=debug,hyper=warn")).is_ok());
        let err = filter(Some("service=loud")).unwrap_err();
        assert!(err.contains("service=loud"), "{err}");
    }
}
