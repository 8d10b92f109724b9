//! JSON bytes into a [`serde_json::Value`] within a memory budget.
//!
//! A JSON document's tree costs far more than its bytes, and how much more depends on its shape:
//! `{"a":0},` is 8 bytes of JSON and a 1-entry object, which `serde_json::Map` (a `BTreeMap`)
//! keeps in a leaf node of about 640 bytes: a 7 MiB body of such objects became a 650 MB tree.
//! [`from_slice`] builds the same `Value` as `serde_json::from_slice` while charging an estimate of
//! each allocation against a budget, and stops with [`TooLarge`] as soon as the estimate passes
//! it, before the memory is spent.
//!
//! The estimate (bytes, on 64-bit targets): 32 for every value's slot (48 in an array, whose
//! buffer may be up to twice its length while it grows); a string's length plus 16 of malloc
//! overhead; an object's `BTreeMap` leaf of 11 entries, 640 per started leaf (values live in it).

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// The estimate for one value's slot.
const SLOT: usize = 32;
/// The estimate for one array element (its slot, and room for the buffer's growth).
const ARRAY_ELEMENT: usize = 48;
/// The estimate for a string's allocation beyond its bytes.
const STRING_OVERHEAD: usize = 16;
/// Entries in a `BTreeMap` leaf node.
const MAP_LEAF_ENTRIES: usize = 11;
/// The estimate for one `BTreeMap<String, Value>` leaf node.
const MAP_LEAF: usize = 640;

/// The document's tree would pass the budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    /// The budget, in estimated bytes.
    pub budget: usize,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the document is too large to judge: its decoded form would pass the webhook's budget of {} MiB",
            self.budget / (1024 * 1024)
        )
    }
}

impl std::error::Error for TooLarge {}

/// Why [`from_slice`] failed.
#[derive(Debug)]
pub enum Error {
    /// The bytes are not JSON (serde_json's error, with line and column).
    Json(serde_json::Error),
    /// The tree would pass the budget.
    TooLarge(TooLarge),
}

/// `serde_json::from_slice::<Value>`, stopping once the tree's estimated size passes `budget`
/// bytes. Trailing characters after the value are an error, as with `serde_json::from_slice`.
pub fn from_slice(bytes: &[u8], budget: usize) -> Result<Value, Error> {
    let spent = Cell::new(SLOT);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = Seed {
        spent: &spent,
        budget,
    };
    let value = match seed.deserialize(&mut de) {
        Ok(value) => value,
        Err(e) if spent.get() > budget => {
            drop(e);
            return Err(Error::TooLarge(TooLarge { budget }));
        }
        Err(e) => return Err(Error::Json(e)),
    };
    de.end().map_err(Error::Json)?;
    Ok(value)
}

/// Builds one value, charging `spent`.
#[derive(Clone, Copy)]
struct Seed<'a> {
    spent: &'a Cell<usize>,
    budget: usize,
}

impl Seed<'_> {
    fn charge<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        let spent = self.spent.get().saturating_add(bytes);
        self.spent.set(spent);
        if spent > self.budget {
            // The message is replaced by `TooLarge` in `from_slice`.
            return Err(E::custom("over the budget"));
        }
        Ok(())
    }

    fn string_cost(len: usize) -> usize {
        if len == 0 { 0 } else { len + STRING_OVERHEAD }
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.charge(Self::string_cost(v.len()))?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.charge(Self::string_cost(v.len()))?;
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            self.charge::<A::Error>(ARRAY_ELEMENT)?;
            match seq.next_element_seed(self)? {
                Some(item) => items.push(item),
                None => break,
            }
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        let mut entries = 0usize;
        while let Some(key) = map.next_key::<String>()? {
            if entries.is_multiple_of(MAP_LEAF_ENTRIES) {
                self.charge::<A::Error>(MAP_LEAF)?;
            }
            entries += 1;
            self.charge::<A::Error>(Self::string_cost(key.len()))?;
            let value = map.next_value_seed(self)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same_as_serde_json(text: &str) {
        let ours = from_slice(text.as_bytes(), usize::MAX);
        let theirs = serde_json::from_slice::<Value>(text.as_bytes());
        match (ours, theirs) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
            (Err(Error::Json(a)), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text}"),
            (a, b) => panic!("{text}: ours {a:?}, serde_json {b:?}"),
        }
    }

    #[test]
    fn builds_what_serde_json_builds() {
        for text in [
            "null",
            "true",
            "0",
            "-1",
            "18446744073709551615",
            "18446744073709551616",
            "1.5",
            "1e400",
            "\"a\\u00e9\\n\"",
            "[]",
            "{}",
            r#"{"b":1,"a":[1,{"c":null}],"b":2}"#,
            r#"{"a":"#,
            "[1,]",
            "1 2",
            "\"\\ud800\"",
            &format!("{}{}", "[".repeat(200), "]".repeat(200)),
        ] {
            same_as_serde_json(text);
        }
    }

    #[test]
    fn stops_at_the_budget_not_after() {
        let tiny_maps = format!("[{}{{\"a\":0}}]", "{\"a\":0},".repeat(100_000));
        let budget = 8 * 1024 * 1024;
        match from_slice(tiny_maps.as_bytes(), budget) {
            Err(Error::TooLarge(e)) => {
                assert_eq!(e.budget, budget);
                assert!(e.to_string().contains("budget of 8 MiB"), "{e}");
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        // The same document fits a budget of its estimate: 100,001 × (48 + 640 + 17).
        assert!(from_slice(tiny_maps.as_bytes(), 71 * 1024 * 1024).is_ok());
    }

    #[test]
    fn a_json_error_inside_the_budget_stays_a_json_error() {
        match from_slice(b"[1,2", 1024) {
            Err(Error::Json(e)) => assert!(e.is_eof(), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}
