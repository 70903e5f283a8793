//! What the reader benchmark (`benches/readers.rs`) needs from inside the crate. Not part of
//! the API: it changes with the readers.

use crate::trace::{BatchSource, ReadOptions, Symbols, TraceError, open_batches};

/// The batch readers of `inputs`, one per file in the order given, names interned into one
/// fresh symbol table; `None` when an input has no batch reader (it is read as records then).
pub fn open_batch_readers(
    inputs: &[String],
) -> Result<Option<Vec<Box<dyn BatchSource>>>, TraceError> {
    let opened = open_batches(inputs, &ReadOptions::default(), &Symbols::new(), false)?;
    Ok(opened.map(|inputs| inputs.into_iter().map(|input| input.source).collect()))
}
