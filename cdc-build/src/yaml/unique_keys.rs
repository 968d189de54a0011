//! A pass over a YAML document that refuses a key written twice in one mapping, naming both lines.
//!
//! serde refuses a repeated struct field but lets a map (`BTreeMap`, `Value`)
//! keep the last value silently; this pass walks every node of the document
//! once, whatever the target type, so every file the loader reads gets the
//! same rule. The error is raised while the repeated key is deserialized, so
//! serde_norway places it at that key; the first occurrence is found by its
//! path in the text.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::location::YamlPath;

/// Start of the message of a duplicate-key error, before the key.
pub(super) const DUPLICATE_KEY: &str = "duplicate key `";
/// What follows the key in a duplicate-key error, before the first line.
pub(super) const FIRST_AT: &str = " (first at line ";

/// Walks `text` and fails on the first key repeated within one mapping.
pub(super) fn check_unique_keys(text: &str) -> Result<(), serde_norway::Error> {
    let deserializer = serde_norway::Deserializer::from_str(text);
    NodeSeed {
        text,
        path: YamlPath::root(),
    }
    .deserialize(deserializer)
}

/// One node of the document, with its path from the root.
struct NodeSeed<'t> {
    text: &'t str,
    path: YamlPath,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i128<E>(self, _: i128) -> Result<(), E> {
        Ok(())
    }
    fn visit_u128<E>(self, _: u128) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while seq
            .next_element_seed(NodeSeed {
                text: self.text,
                path: self.path.clone().item(index),
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key_seed(KeySeed {
            text: self.text,
            path: &self.path,
            seen: &seen,
        })? {
            map.next_value_seed(NodeSeed {
                text: self.text,
                path: self.path.clone().key(key.clone()),
            })?;
            seen.insert(key);
        }
        Ok(())
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // A tagged value (`!tag value`): its content can hold mappings too.
        use de::VariantAccess as _;
        let (IgnoredAny, variant) = data.variant::<IgnoredAny>()?;
        variant.newtype_variant_seed(self)
    }
}

/// A mapping's key, refused when the mapping has it already.
struct KeySeed<'a, 't> {
    text: &'t str,
    path: &'a YamlPath,
    seen: &'a HashSet<String>,
}

impl KeySeed<'_, '_> {
    fn unique<E: de::Error>(self, key: String) -> Result<String, E> {
        if !self.seen.contains(&key) {
            return Ok(key);
        }
        let first = self.path.clone().key(key.as_str()).line_in(self.text);
        let first = first
            .map(|line| format!("{FIRST_AT}{line})"))
            .unwrap_or_default();
        Err(E::custom(format!("{DUPLICATE_KEY}{key}`{first}")))
    }
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, '_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        self.unique(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        self.unique(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        self.unique(v.to_string())
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<String, E> {
        self.unique(v.to_string())
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<String, E> {
        self.unique(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        self.unique(v.to_string())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        self.unique(v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        self.unique("null".to_string())
    }
    fn visit_none<E: de::Error>(self) -> Result<String, E> {
        self.unique("null".to_string())
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        self.deserialize(deserializer)
    }
    // A sequence or mapping as a key cannot name a field of ours: the typed
    // parse refuses it. Its content is still checked.
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<String, A::Error> {
        let node = NodeSeed {
            text: self.text,
            path: self.path.clone(),
        };
        node.visit_seq(seq)?;
        Ok(format!("\u{0}{}", self.seen.len()))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<String, A::Error> {
        let node = NodeSeed {
            text: self.text,
            path: self.path.clone(),
        };
        node.visit_map(map)?;
        Ok(format!("\u{0}{}", self.seen.len()))
    }
}
