//! Parsing the command line. `jobctl rerun ...`, the verb a CI script runs
//! the most, is first tried against a parser that knows that verb alone
//! (building all of them is a third of a millisecond); anything it does
//! not take as it stands (help, a misspelled flag, another verb, a global
//! flag before the verb) goes to the whole parser, which answers exactly
//! as it always did.

use std::ffi::OsString;

use clap::{Parser, Subcommand};

use super::{Cli, Command, Globals, RerunArgs, EXIT_CODES};

/// The command line of this process.
pub(crate) fn parse() -> Cli {
    let args: Vec<OsString> = std::env::args_os().collect();
    rerun_alone(&args).unwrap_or_else(|| Cli::parse_from(args))
}

/// `jobctl rerun ...` parsed by the rerun-only parser; `None` for
/// anything else or anything it refuses (the full parser then speaks).
fn rerun_alone(args: &[OsString]) -> Option<Cli> {
    if args.get(1).is_none_or(|a| a != "rerun") {
        return None;
    }
    let RerunOnly { global, command } = RerunOnly::try_parse_from(args).ok()?;
    let Only::Rerun(a) = command;
    Some(Cli {
        global,
        command: Command::Rerun(a),
    })
}

/// [`Cli`] with the rerun verb alone: the same flags, defined once.
#[derive(Parser)]
#[command(name = "jobctl")]
struct RerunOnly {
    #[command(flatten)]
    global: Globals,
    #[command(subcommand)]
    command: Only,
}

#[derive(Subcommand)]
enum Only {
    #[command(after_help = EXIT_CODES)]
    Rerun(Box<RerunArgs>),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    /// What the rerun-only parser takes, the full parser reads the same.
    #[test]
    fn the_rerun_parser_agrees_with_the_whole_one() {
        let lines: &[&[&str]] = &[
            &[
                "jobctl", "rerun", "--token", "cashuAx", "--worker", "w", "--", "a", "-b",
            ],
            &[
                "jobctl",
                "rerun",
                "-q",
                "--no-check",
                "--json",
                "--relay",
                "ws://x",
                "JOB",
            ],
            &[
                "jobctl",
                "rerun",
                "--batch",
                "-",
                "--concurrency",
                "4",
                "-vv",
            ],
            &[
                "jobctl",
                "rerun",
                "--journal",
                "/tmp/j",
                "--unpaid",
                "--timeout",
                "5s",
            ],
        ];
        for line in lines {
            let fast = rerun_alone(&os(line)).expect("the rerun parser takes it");
            let full = Cli::try_parse_from(os(line)).expect("the full parser takes it");
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{line:?}");
        }
    }

    /// Help, errors, other verbs and global flags before the verb go to
    /// the full parser.
    #[test]
    fn anything_else_goes_to_the_whole_parser() {
        let lines: &[&[&str]] = &[
            &["jobctl", "rerun", "--help"],
            &["jobctl", "rerun", "--no-such-flag"],
            &["jobctl", "-q", "rerun", "--unpaid"],
            &["jobctl", "watch", "abc"],
            &["jobctl"],
            &["jobctl", "--version"],
        ];
        for line in lines {
            assert!(rerun_alone(&os(line)).is_none(), "{line:?}");
        }
    }
}
