//! Per-stream string interning: server, grant, session and tool names repeat on every call.

// Names are hashed for every call of every trace: Fx hashing is much cheaper than SipHash for
// these short keys, and they are not adversarial.
use rustc_hash::FxHashMap as HashMap;

use super::Sym;

/// Hands out one shared [`Sym`] per distinct string.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    map: HashMap<Box<str>, Sym>,
}

impl Interner {
    pub(crate) fn get(&mut self, s: &str) -> Sym {
        if let Some(sym) = self.map.get(s) {
            return sym.clone();
        }
        let sym: Sym = Sym::from(s);
        self.map.insert(s.into(), sym.clone());
        sym
    }
}
