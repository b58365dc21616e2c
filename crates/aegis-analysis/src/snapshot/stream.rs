//! A snapshot read object by object: each item of a List is decoded to a JSON value, typed and
//! added to the snapshot before the next one is read, so the items never all exist as
//! `serde_json::Value`s at once. Read whole, they cost about eleven times the JSON
//! (docs/benchmarks.md, "Large snapshots"); from a reader, not even the text is held. JSON and a
//! single YAML document (what `kubectl get -o yaml` prints) go through the same visitor; only a YAML
//! stream of several documents is read whole.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{Snapshot, SnapshotError, captured_at, flatten};

/// Read one JSON document — a List, one object, or an array of them — into a snapshot.
pub(super) fn read<'de, R: serde_json::de::Read<'de>>(input: R) -> Result<Snapshot, SnapshotError> {
    let mut de = serde_json::Deserializer::new(input);
    let mut state = State::default();
    let outcome = Document(&mut state).deserialize(&mut de).and_then(|()| de.end());
    // An object that is not a valid Kubernetes object says which one; the parser's error says only where.
    if let Some(e) = state.failed {
        return Err(e);
    }
    match outcome {
        Ok(()) => Ok(state.snapshot),
        Err(e) if e.is_eof() && !state.began => Err(SnapshotError::Empty),
        Err(e) => Err(SnapshotError::Invalid(e.to_string())),
    }
}

/// Read one YAML document the same way; `None` when the text holds several documents (the caller
/// reads those whole, so the first document of such a stream is parsed twice: a cost paid only by
/// multi-document files, since kubectl prints one).
pub(super) fn read_yaml(text: &str, options: serde_saphyr::Options) -> Result<Option<Snapshot>, SnapshotError> {
    let mut state = State::default();
    let outcome = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| Document(&mut state).deserialize(de));
    if let Some(e) = state.failed {
        return Err(e);
    }
    let Err(e) = outcome else {
        return if state.began { Ok(Some(state.snapshot)) } else { Err(SnapshotError::Empty) };
    };
    match root(&e) {
        serde_saphyr::Error::MultipleDocuments { .. } => Ok(None),
        _ => Err(yaml_error(e)),
    }
}

/// A YAML reader's error as the snapshot's: a breach of the reader's budget (a YAML bomb, or a List
/// past the limits) says so, whatever the parser wrapped it in.
pub(super) fn yaml_error(e: serde_saphyr::Error) -> SnapshotError {
    match root(&e) {
        serde_saphyr::Error::Budget { breach, .. } => SnapshotError::OverLimit(format!("{breach:?}")),
        _ => SnapshotError::Invalid(e.to_string()),
    }
}

/// The error under the parser's wrappings (the source snippet, the alias an error came through).
fn root(mut e: &serde_saphyr::Error) -> &serde_saphyr::Error {
    loop {
        e = match e {
            serde_saphyr::Error::WithSnippet { error, .. } | serde_saphyr::Error::AliasError { error, .. } => error,
            other => return other,
        }
    }
}

#[derive(Default)]
struct State {
    snapshot: Snapshot,
    /// Set when an object could not be added: the reason, kept typed.
    failed: Option<SnapshotError>,
    /// Whether the document had begun (an empty input is `Empty`, not invalid).
    began: bool,
}

impl State {
    /// Add a document or an item (a List or array inside is flattened).
    fn add<E: serde::de::Error>(&mut self, doc: Value) -> Result<(), E> {
        let mut objects = Vec::new();
        flatten(doc, &mut objects);
        for obj in objects {
            if let Err(e) = self.snapshot.add(obj) {
                let message = e.to_string();
                self.failed = Some(e);
                return Err(E::custom(message));
            }
        }
        Ok(())
    }

    fn note_capture_time<E: serde::de::Error>(&mut self, doc: &Value) -> Result<(), E> {
        match captured_at(doc) {
            Ok(Some(at)) => self.snapshot.captured_at = Some(at),
            Ok(None) => {}
            Err(e) => {
                let message = e.to_string();
                self.failed = Some(e);
                return Err(E::custom(message));
            }
        }
        Ok(())
    }
}

/// The top-level document.
struct Document<'a>(&'a mut State);

impl<'de> DeserializeSeed<'de> for Document<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes List, an object, or an array of objects")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.0.began = true;
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.0.began = true;
        Items(self.0).visit_seq(seq)
    }

    /// A List's `items` are streamed wherever they come among its fields; every other field is kept
    /// whole (they are small), and an object without `items` is itself the one object.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.0.began = true;
        let mut fields = Map::new();
        let mut streamed = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" {
                map.next_value_seed(Items(&mut *self.0))?;
                streamed = true;
            } else {
                fields.insert(key, map.next_value()?);
            }
        }
        let fields = Value::Object(fields);
        self.0.note_capture_time(&fields)?;
        let is_list = fields.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"));
        match (is_list, streamed) {
            (true, _) => Ok(()),
            (false, true) => Err(A::Error::custom("an object with `items` is not a List (its kind does not end in `List`)")),
            (false, false) => self.0.add(fields),
        }
    }
}

/// A List's items (or a top-level array), added one at a time.
struct Items<'a>(&'a mut State);

impl<'de> DeserializeSeed<'de> for Items<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Items<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of Kubernetes objects")
    }

    /// `"items": null`, as some tools write an empty List.
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<Value>()? {
            self.0.add(item)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"{"apiVersion":"v1","kind":"List","metadata":{"annotations":{"aegis.io/captured-at":"2026-11-30T12:00:00Z"}},
        "items":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"shop"}},
                 {"apiVersion":"v1","kind":"ServiceList","items":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"db","namespace":"shop"}}]},
                 {"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"}}]}"#;

    fn names(s: &Snapshot) -> Vec<String> {
        s.services.iter().filter_map(|x| x.metadata.name.clone()).collect()
    }

    #[test]
    fn a_list_read_from_text_or_from_a_reader_gives_the_same_snapshot_with_its_capture_time() {
        for s in [Snapshot::from_text(LIST).unwrap(), Snapshot::from_json_reader(LIST.as_bytes()).unwrap()] {
            assert_eq!(names(&s), ["web", "db"], "nested Lists are flattened");
            assert_eq!(s.other_kinds.get("Widget"), Some(&1));
            assert_eq!(s.captured_at, Some("2026-11-30T12:00:00Z".parse().unwrap()));
        }
    }

    #[test]
    fn items_before_the_lists_kind_an_array_and_a_single_object_are_read() {
        let items_first = r#"{"items":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"}}],"kind":"List","apiVersion":"v1"}"#;
        assert_eq!(names(&Snapshot::from_json_reader(items_first.as_bytes()).unwrap()), ["web"]);
        let array = r#"[{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"}},{"apiVersion":"v1","kind":"Service","metadata":{"name":"b"}}]"#;
        assert_eq!(names(&Snapshot::from_json_reader(array.as_bytes()).unwrap()), ["a", "b"]);
        let one = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"solo"}}"#;
        assert_eq!(names(&Snapshot::from_json_reader(one.as_bytes()).unwrap()), ["solo"]);
        let empty_list = r#"{"apiVersion":"v1","kind":"List","items":null}"#;
        assert!(Snapshot::from_json_reader(empty_list.as_bytes()).unwrap().services.is_empty());
    }

    #[test]
    fn a_bad_object_is_named_and_broken_or_empty_input_says_so() {
        let bad = r#"{"kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":"nope"}}]}"#;
        let err = Snapshot::from_json_reader(bad.as_bytes()).unwrap_err();
        assert!(matches!(&err, SnapshotError::Object { kind, name, .. } if kind == "Pod" && name == "p"), "{err:?}");
        let truncated = &LIST[..LIST.len() / 2];
        assert!(matches!(Snapshot::from_json_reader(truncated.as_bytes()), Err(SnapshotError::Invalid(_))));
        assert_eq!(Snapshot::from_json_reader(&b"  \n"[..]).unwrap_err(), SnapshotError::Empty);
        let trailing = format!("{LIST} {{}}");
        assert!(matches!(Snapshot::from_json_reader(trailing.as_bytes()), Err(SnapshotError::Invalid(_))), "one document only");
        let not_a_list = r#"{"kind":"Pod","items":[]}"#;
        assert!(matches!(Snapshot::from_json_reader(not_a_list.as_bytes()), Err(SnapshotError::Invalid(m)) if m.contains("not a List")));
        let scalar = Snapshot::from_json_reader(&b"42"[..]).unwrap_err().to_string();
        assert!(scalar.contains("expected a Kubernetes List, an object, or an array of objects"), "{scalar}");
        let bad_time = r#"{"kind":"List","metadata":{"annotations":{"aegis.io/captured-at":"yesterday"}},"items":[]}"#;
        assert!(matches!(Snapshot::from_json_reader(bad_time.as_bytes()), Err(SnapshotError::Invalid(m)) if m.contains("RFC 3339")));
    }
}
