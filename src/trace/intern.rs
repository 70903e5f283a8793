//! Per-stream string interning: server, grant, session and tool names repeat on every call.

use std::collections::HashMap;

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
