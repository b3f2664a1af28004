//! Reading one event of a template's reply: the paths of its JSON pointers as a [`Trie`], and
//! a serde walk that captures only the values at those paths (strings borrowed from the input
//! when they have no escapes), skipping everything else without allocating.

use serde_json::Value;

/// The paths of a reply's pointers, as a tree. An event is walked along these paths only:
/// the value where a pointer (the shallowest one on a path) ends is captured in that node's
/// slot (a string borrowed from the input when it has no escapes), everything else is skipped
/// without allocating. Pointers then read the captured slots.
#[derive(Debug, Default)]
pub(super) struct Trie {
    /// A pointer ends here: the slot that keeps the value.
    leaf: Option<usize>,
    ends: bool,
    keys: Vec<(String, Trie)>,
    indices: Vec<(usize, Trie)>,
    slots: usize,
}

impl Trie {
    pub(super) fn add(&mut self, tokens: &[(String, Option<usize>)]) {
        let Some(((t, i), rest)) = tokens.split_first() else {
            self.ends = true;
            return;
        };
        let k = match self.keys.iter().position(|(k, _)| k == t) {
            Some(k) => k,
            None => {
                self.keys.push((t.clone(), Trie::default()));
                self.keys.len() - 1
            }
        };
        self.keys[k].1.add(rest);
        if let Some(i) = *i {
            let at = match self.indices.iter().position(|(j, _)| *j == i) {
                Some(at) => at,
                None => {
                    self.indices.push((i, Trie::default()));
                    self.indices.len() - 1
                }
            };
            self.indices[at].1.add(rest);
        }
    }

    /// Gives every node where a pointer ends a slot (nodes below one capture nothing of
    /// their own: their values are inside it). An array index shares the slots of the object
    /// key of the same digits: a value is one or the other, and pointers are located by key.
    pub(super) fn number(&mut self, next: &mut usize) {
        if self.ends {
            self.leaf = Some(*next);
            *next += 1;
        } else {
            for (_, t) in &mut self.keys {
                t.number(next);
            }
            for (i, t) in &mut self.indices {
                let name = i.to_string();
                if let Some((_, k)) = self.keys.iter().find(|(k, _)| *k == name) {
                    t.mirror(k);
                }
            }
        }
        self.slots = *next;
    }

    /// Takes the slots of `from`, a node built by the same pointers.
    pub(super) fn mirror(&mut self, from: &Trie) {
        self.leaf = from.leaf;
        for ((_, a), (_, b)) in self.keys.iter_mut().zip(&from.keys) {
            a.mirror(b);
        }
        for ((_, a), (_, b)) in self.indices.iter_mut().zip(&from.indices) {
            a.mirror(b);
        }
    }

    /// The slot holding `tokens`' value (or the value it is inside) and its depth.
    pub(super) fn locate(&self, tokens: &[(String, Option<usize>)]) -> (usize, usize) {
        let mut node = self;
        for (d, (t, _)) in tokens.iter().enumerate() {
            if let Some(s) = node.leaf {
                return (s, d);
            }
            node = match node.keys.iter().find(|(k, _)| k == t) {
                Some((_, n)) => n,
                None => return (usize::MAX, d),
            };
        }
        (node.leaf.unwrap_or(usize::MAX), tokens.len())
    }
}

/// A captured value.
#[derive(Debug, PartialEq)]
pub(super) enum Cap<'de> {
    Str(std::borrow::Cow<'de, str>),
    Val(Value),
}

/// The slots of one event.
pub(super) type Caps<'de> = Vec<Option<Cap<'de>>>;

pub(super) fn capture<'de>(raw: &'de [u8], trie: &Trie) -> Result<Caps<'de>, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut caps: Caps<'de> = (0..trie.slots).map(|_| None).collect();
    let mut de = serde_json::Deserializer::from_slice(raw);
    Walk {
        node: trie,
        caps: &mut caps,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(caps)
}

/// Walks a value along a trie node.
struct Walk<'t, 'c, 'de> {
    node: &'t Trie,
    caps: &'c mut Caps<'de>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Walk<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if let Some(slot) = self.node.leaf {
            self.caps[slot] = Some(CapSeed.deserialize(d)?);
            return Ok(());
        }
        d.deserialize_any(self)
    }
}

/// Finds an object key among a trie node's keys without allocating.
struct Key<'t>(&'t Trie);

impl<'de, 't> serde::de::DeserializeSeed<'de> for Key<'t> {
    type Value = Option<&'t Trie>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 't> serde::de::Visitor<'de> for Key<'t> {
    type Value = Option<&'t Trie>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, k: &str) -> Result<Self::Value, E> {
        Ok(self.0.keys.iter().find(|(x, _)| x == k).map(|(_, t)| t))
    }
}

impl<'de> serde::de::Visitor<'de> for Walk<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        while let Some(k) = m.next_key_seed(Key(self.node))? {
            match k {
                Some(t) => m.next_value_seed(Walk {
                    node: t,
                    caps: self.caps,
                })?,
                None => {
                    m.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let more = match self.node.indices.iter().find(|(j, _)| *j == i) {
                Some((_, t)) => s
                    .next_element_seed(Walk {
                        node: t,
                        caps: self.caps,
                    })?
                    .is_some(),
                None => s.next_element::<serde::de::IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }
    // a scalar where the pointers go deeper: no pointer finds anything in it
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
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
}

/// Captures a value: a string borrowed when it can be, anything else as a `Value`.
struct CapSeed;

impl<'de> serde::de::DeserializeSeed<'de> for CapSeed {
    type Value = Cap<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Cap<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for CapSeed {
    type Value = Cap<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Cap<'de>, E> {
        Ok(Cap::Str(std::borrow::Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Cap<'de>, E> {
        Ok(Cap::Str(std::borrow::Cow::Owned(s.to_string())))
    }
    fn visit_string<E>(self, s: String) -> Result<Cap<'de>, E> {
        Ok(Cap::Str(std::borrow::Cow::Owned(s)))
    }
    fn visit_bool<E>(self, b: bool) -> Result<Cap<'de>, E> {
        Ok(Cap::Val(Value::Bool(b)))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Cap<'de>, E> {
        Ok(Cap::Val(Value::from(n)))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Cap<'de>, E> {
        Ok(Cap::Val(Value::from(n)))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Cap<'de>, E> {
        Ok(Cap::Val(Value::from(n)))
    }
    fn visit_unit<E>(self) -> Result<Cap<'de>, E> {
        Ok(Cap::Val(Value::Null))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, m: A) -> Result<Cap<'de>, A::Error> {
        use serde::Deserialize;
        Value::deserialize(serde::de::value::MapAccessDeserializer::new(m)).map(Cap::Val)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, s: A) -> Result<Cap<'de>, A::Error> {
        use serde::Deserialize;
        Value::deserialize(serde::de::value::SeqAccessDeserializer::new(s)).map(Cap::Val)
    }
}
