//! `processor_add_fields`: adds fixed fields to every event.
//!
//! As in LoongCollector, each of `Fields` is added to every event; with
//! `IgnoreIfExist` a field the event already has keeps its value, without
//! it the configured value replaces it. The fields are added in the order of
//! their names (LoongCollector iterates a Go map, whose order is random).

use bytes::Bytes;

use crate::event::{Event, FieldKey};
use crate::process::ParserStats;
use crate::{EventBatch, Parser};

/// The LoongCollector type string of this processor.
pub const NAME: &str = "processor_add_fields";

/// Options of `processor_add_fields`.
///
/// Non-exhaustive: start from [`AddFieldsOptions::default`] and set fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AddFieldsOptions {
    /// `Fields`: name and value of each field to add (required, not empty).
    pub fields: Vec<(String, String)>,
    /// `IgnoreIfExist` (default false): keep a value the event already has.
    pub ignore_if_exist: bool,
}

/// A configuration error of `processor_add_fields`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddFieldsError {
    /// `Fields` is empty.
    #[error("Fields: must name at least one field")]
    NoFields,
    /// A field name is empty.
    #[error("Fields: a field name must not be empty")]
    EmptyName,
}

/// The `processor_add_fields` step.
#[derive(Debug)]
pub struct AddFieldsParser {
    fields: Vec<(FieldKey, Bytes)>,
    ignore_if_exist: bool,
    stats: ParserStats,
}

impl AddFieldsParser {
    /// Checks the options and builds the step.
    pub fn new(opts: AddFieldsOptions) -> Result<Self, AddFieldsError> {
        if opts.fields.is_empty() {
            return Err(AddFieldsError::NoFields);
        }
        if opts.fields.iter().any(|(k, _)| k.is_empty()) {
            return Err(AddFieldsError::EmptyName);
        }
        let mut fields = opts.fields;
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(AddFieldsParser {
            fields: fields
                .into_iter()
                .map(|(k, v)| (FieldKey::interned(&k), Bytes::from(v)))
                .collect(),
            ignore_if_exist: opts.ignore_if_exist,
            stats: ParserStats::default(),
        })
    }

    /// Adds the fields to one event.
    pub fn process_event(&mut self, event: &mut Event) {
        self.stats.processed += 1;
        for (k, v) in &self.fields {
            if self.ignore_if_exist && event.field(k).is_some() {
                continue;
            }
            event.set_field(k.clone(), v.clone());
        }
    }
}

impl Parser for AddFieldsParser {
    fn name(&self) -> &str {
        NAME
    }

    fn process(&mut self, batch: &mut EventBatch) {
        for e in &mut batch.events {
            self.process_event(e);
        }
    }

    fn stats(&self) -> ParserStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    fn opts(fields: &[(&str, &str)], ignore: bool) -> AddFieldsOptions {
        AddFieldsOptions {
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ignore_if_exist: ignore,
        }
    }

    fn ev(s: &'static str) -> Event {
        Event::line(Bytes::from_static(s.as_bytes()), 0, Timestamp::default())
    }

    #[test]
    fn documented_example_adds_service_a() {
        // processor-add-fields.md: `this is a test log` + Fields {service: A}.
        let mut p = AddFieldsParser::new(opts(&[("service", "A")], false)).unwrap();
        let mut e = ev("this is a test log");
        p.process_event(&mut e);
        let got: Vec<_> = e.contents().collect();
        assert_eq!(
            got,
            vec![
                ("service", &b"A"[..]),
                ("content", &b"this is a test log"[..])
            ]
        );
        assert_eq!(p.stats().processed, 1);
    }

    #[test]
    fn ignore_if_exist_keeps_the_old_value_and_without_it_replaces() {
        let mut e = ev("x");
        e.set_field("service", Bytes::from_static(b"old"));
        let mut keep = AddFieldsParser::new(opts(&[("service", "A"), ("b", "2")], true)).unwrap();
        keep.process_event(&mut e);
        assert_eq!(e.field("service").unwrap(), b"old");
        assert_eq!(e.field("b").unwrap(), b"2");
        let mut replace = AddFieldsParser::new(opts(&[("service", "A")], false)).unwrap();
        replace.process_event(&mut e);
        assert_eq!(e.field("service").unwrap(), b"A");
        // `content` is a field too: replaced without IgnoreIfExist.
        let mut c = AddFieldsParser::new(opts(&[("content", "new")], true)).unwrap();
        let mut e = ev("raw");
        c.process_event(&mut e);
        assert_eq!(e.field("content").unwrap(), b"raw");
    }

    #[test]
    fn empty_fields_or_names_are_refused() {
        assert_eq!(
            AddFieldsParser::new(opts(&[], false)).unwrap_err(),
            AddFieldsError::NoFields
        );
        assert_eq!(
            AddFieldsParser::new(opts(&[("", "v")], false)).unwrap_err(),
            AddFieldsError::EmptyName
        );
    }
}
