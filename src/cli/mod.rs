//! Command-line interface: clap types and one file per subcommand.

pub mod check;
