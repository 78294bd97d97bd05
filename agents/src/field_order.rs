//! The order a struct declares its fields in, as its `Deserialize` tells a deserializer.
//! A derived JSON Schema lists properties alphabetically; a kind's inputs read best in
//! the order its author wrote them (the repository first, its options after).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// `T`'s field names in declaration order (as serde names them); empty for anything
/// that is not a struct.
pub(crate) fn field_order<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    // Always an error: the deserializer stops as soon as it has the names.
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

/// A deserializer that records the field list a struct asks for and gives nothing.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("only the field names were wanted")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = fields;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[allow(dead_code, reason = "only its shape is read")]
    struct Declared {
        zebra: u8,
        #[serde(rename = "apple")]
        mango: u8,
        kiwi: Option<u8>,
    }

    #[test]
    fn fields_come_in_declaration_order_under_their_serde_names() {
        assert_eq!(field_order::<Declared>(), ["zebra", "apple", "kiwi"]);
        assert!(field_order::<serde_json::Map<String, serde_json::Value>>().is_empty());
    }
}
