//! The command line as a user meets it: snapshots of every subcommand and output format on the
//! shipped fixtures, exit codes of every gate, and the stability of the JSON schema.

use std::path::Path;
use std::process::Command;

use insta_cmd::get_cargo_bin;

/// `mcpsim` run from the repository root with a cleared environment, so paths in the output are
/// the relative fixture paths and nothing of the caller's environment leaks in.
pub(crate) fn mcpsim(args: &[&str]) -> Command {
    let mut cmd = Command::new(get_cargo_bin("mcpsim"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd.env_clear();
    cmd.args(args);
    cmd
}

macro_rules! snapshot {
    ($name:expr, $cmd:expr) => {
        insta::with_settings!({
            snapshot_path => "../../snapshots",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta_cmd::assert_cmd_snapshot!($name, $cmd);
        })
    };
}
pub(crate) use snapshot;

pub(crate) fn run(args: &[&str]) -> (i32, String, String) {
    let out = mcpsim(args).output().expect("mcpsim runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) fn fixture(p: &str) -> String {
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(p).exists(),
        "missing fixture {p}"
    );
    p.to_owned()
}
