//! A field's value as JSON gives it, whatever its type: which fields an
//! event needs depends on its `type`, which may come after them, and a
//! field of another type is skipped whatever it holds (as serde's derive
//! did). What was given is kept until the type says what it must be.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A field's value as given, whatever its JSON type.
pub(super) enum Given<T> {
    Null,
    Value(T),
    /// Not of the field's JSON type: what it was, and what was expected.
    Odd(Odd, &'static str),
}

/// A JSON value of the wrong type, kept for the error (serde's
/// `Unexpected` borrows what it names).
pub(super) enum Odd {
    Null,
    Bool(bool),
    Signed(i64),
    Unsigned(u64),
    Float(f64),
    Str(String),
    Map,
    Seq,
}

impl Odd {
    pub(super) fn error<E: de::Error>(&self, expected: &'static str) -> E {
        use de::Unexpected;
        let unexpected = match self {
            Odd::Null => Unexpected::Unit,
            Odd::Bool(b) => Unexpected::Bool(*b),
            Odd::Signed(n) => Unexpected::Signed(*n),
            Odd::Unsigned(n) => Unexpected::Unsigned(*n),
            Odd::Float(n) => Unexpected::Float(*n),
            Odd::Str(text) => Unexpected::Str(text),
            Odd::Map => Unexpected::Map,
            Odd::Seq => Unexpected::Seq,
        };
        E::invalid_type(unexpected, &expected)
    }
}

/// How a field's value is made of what JSON gives (anything, since a
/// field of another type is skipped whatever it holds).
pub(super) trait FieldValue: Sized {
    /// What the field holds, for errors.
    const EXPECTED: &'static str;
    fn from_text(text: &str) -> Given<Self>;
    fn from_owned(text: String) -> Given<Self> {
        Self::from_text(&text)
    }
    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Given<Self>, A::Error>;
}

impl FieldValue for String {
    const EXPECTED: &'static str = "a string";

    fn from_text(text: &str) -> Given<String> {
        Given::Value(text.to_string())
    }

    fn from_owned(text: String) -> Given<String> {
        Given::Value(text)
    }

    fn from_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Given<String>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Given::Odd(Odd::Map, Self::EXPECTED))
    }
}

/// `properties`: an object of strings.
impl FieldValue for BTreeMap<String, String> {
    const EXPECTED: &'static str = "a map";

    fn from_text(text: &str) -> Given<Self> {
        Given::Odd(Odd::Str(text.to_string()), Self::EXPECTED)
    }

    fn from_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Given<Self>, A::Error> {
        let mut properties = BTreeMap::new();
        let mut odd = None;
        while let Some(name) = map.next_key::<String>()? {
            match map.next_value::<Given<String>>()? {
                Given::Value(value) => {
                    properties.insert(name, value);
                }
                Given::Null => {
                    odd.get_or_insert(Odd::Null);
                }
                Given::Odd(other, _) => {
                    odd.get_or_insert(other);
                }
            }
        }
        Ok(match odd {
            Some(odd) => Given::Odd(odd, String::EXPECTED),
            None => Given::Value(properties),
        })
    }
}

impl<'de, T: FieldValue> Deserialize<'de> for Given<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(GivenVisitor(PhantomData))
    }
}

struct GivenVisitor<T>(PhantomData<T>);

impl<'de, T: FieldValue> Visitor<'de> for GivenVisitor<T> {
    type Value = Given<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTED)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Given<T>, E> {
        Ok(Given::Odd(Odd::Bool(v), T::EXPECTED))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Given<T>, E> {
        Ok(Given::Odd(Odd::Signed(v), T::EXPECTED))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Given<T>, E> {
        Ok(Given::Odd(Odd::Unsigned(v), T::EXPECTED))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Given<T>, E> {
        Ok(Given::Odd(Odd::Float(v), T::EXPECTED))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Given<T>, E> {
        Ok(T::from_text(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Given<T>, E> {
        Ok(T::from_owned(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Given<T>, E> {
        Ok(Given::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Given<T>, E> {
        Ok(Given::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Given<T>, D::Error> {
        Given::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Given<T>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Given::Odd(Odd::Seq, T::EXPECTED))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Given<T>, A::Error> {
        T::from_map(map)
    }
}
