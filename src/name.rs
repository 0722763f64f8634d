//! Breaker names: set once at build, read with no allocation.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A breaker's name: a `&'static str` (no allocation at all) or a shared
/// string allocated once (a registry key). Cloning never copies the text.
///
/// ```
/// use nanobreaker::{CircuitBreaker, Name};
/// let cb = CircuitBreaker::builder().name("payments").build().unwrap();
/// assert_eq!(cb.name(), "payments");
/// let dynamic = Name::from(format!("shard-{}", 7));
/// assert_eq!(dynamic.as_str(), "shard-7");
/// ```
#[derive(Clone)]
pub struct Name(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Name {
    /// The empty name of a breaker built without one.
    pub const EMPTY: Name = Name(Repr::Static(""));

    /// A name that borrows a static string.
    pub const fn new(name: &'static str) -> Name {
        Name(Repr::Static(name))
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            Repr::Shared(s) => s,
        }
    }

    /// Heap bytes the name owns (0 for a static name).
    pub(crate) fn heap_bytes(&self) -> usize {
        match &self.0 {
            Repr::Static(_) => 0,
            // The Arc's two counts and the text.
            Repr::Shared(s) => 2 * std::mem::size_of::<usize>() + s.len(),
        }
    }
}

impl Default for Name {
    fn default() -> Self {
        Name::EMPTY
    }
}

impl From<&'static str> for Name {
    fn from(s: &'static str) -> Name {
        Name(Repr::Static(s))
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        Name(Repr::Shared(s.into()))
    }
}

impl From<Arc<str>> for Name {
    fn from(s: Arc<str>) -> Name {
        Name(Repr::Shared(s))
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Name {}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes, so that `Borrow<str>` lookups agree.
        self.as_str().hash(state)
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn static_and_shared_names_are_equal_and_hash_alike() {
        let mut m = HashMap::new();
        m.insert(Name::from("a"), 1);
        assert_eq!(m.get("a"), Some(&1));
        assert_eq!(Name::from("a"), Name::from(String::from("a")));
        assert_eq!(Name::from("x").heap_bytes(), 0);
        assert!(Name::from(String::from("x")).heap_bytes() > 0);
        assert_eq!(Name::default().as_str(), "");
    }
}
