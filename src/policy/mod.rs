//! Policy files: parsing, validation with located errors, compilation for the engine.

pub mod intercept;
