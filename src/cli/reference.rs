//! The command reference, `docs/reference.md`, generated from the clap
//! definitions: every command and subcommand with its about text, usage,
//! every argument (help, environment variable, default, possible values)
//! and the exit codes. The unit test below fails when the file is stale;
//! `JOBCTL_BLESS=1 cargo test --bin jobctl reference` rewrites it.

use std::fmt::Write as _;

use clap::{Arg, Command, CommandFactory};

use super::{Cli, EXIT_CODES};

/// Where the reference lives, from the crate root.
const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reference.md");

/// The environment variable that makes the test rewrite the reference.
const BLESS: &str = "JOBCTL_BLESS";

/// The whole reference as markdown.
pub(crate) fn markdown() -> String {
    let mut cli = Cli::command();
    cli.build();
    let mut out = String::from(
        "# jobctl command reference\n\n\
         <!-- Generated from the clap definitions by src/cli/reference.rs; do not edit by hand.\n     \
         Regenerate: JOBCTL_BLESS=1 cargo test --bin jobctl reference -->\n\n\
         The same texts as `jobctl help <command>`. Global options (listed under `jobctl`)\n\
         work before or after any command.\n\n",
    );
    contents(&mut out, &cli, 0);
    out.push('\n');
    command(&mut out, &cli, "jobctl", true);
    out
}

/// A nested list of links to every command's section.
fn contents(out: &mut String, cmd: &Command, depth: usize) {
    for sub in visible_subcommands(cmd) {
        let path = format!("{} {}", bin_name(cmd), sub.get_name());
        let _ = writeln!(
            out,
            "{}- [`{path}`](#{})",
            "  ".repeat(depth),
            anchor(&path)
        );
        contents(out, sub, depth + 1);
    }
}

/// One command's section, then its subcommands' sections.
fn command(out: &mut String, cmd: &Command, path: &str, top: bool) {
    let _ = writeln!(out, "## `{path}`\n");
    let about = cmd.get_long_about().or(cmd.get_about());
    if let Some(about) = about {
        let _ = writeln!(out, "{}\n", about.to_string().trim_end());
    }
    let usage = cmd.clone().render_usage().to_string();
    let usage = usage.trim_start_matches("Usage:").trim();
    let _ = writeln!(out, "```text\n{usage}\n```\n");
    let args: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && (top || !a.is_global_set()))
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .collect();
    let (positionals, options): (Vec<&Arg>, Vec<&Arg>) =
        args.into_iter().partition(|a| a.is_positional());
    arg_list(out, "Arguments", &positionals);
    arg_list(out, "Options", &options);
    let subs: Vec<&Command> = visible_subcommands(cmd).collect();
    if !subs.is_empty() {
        let _ = writeln!(out, "Commands:\n");
        for sub in &subs {
            let sub_path = format!("{path} {}", sub.get_name());
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            let _ = writeln!(out, "- [`{sub_path}`](#{}): {about}", anchor(&sub_path));
        }
        out.push('\n');
    }
    if let Some(after) = cmd.get_after_long_help().or(cmd.get_after_help()) {
        let after = after.to_string();
        if !top && after == EXIT_CODES {
            let _ = writeln!(out, "Exit codes: as for [`jobctl`](#jobctl).\n");
        } else {
            let _ = writeln!(out, "```text\n{}\n```\n", after.trim_end());
        }
    }
    for sub in subs {
        command(out, sub, &format!("{path} {}", sub.get_name()), false);
    }
}

/// A titled list of arguments, nothing when there are none.
fn arg_list(out: &mut String, title: &str, args: &[&Arg]) {
    if args.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title}:\n");
    for a in args {
        argument(out, a);
    }
    out.push('\n');
}

/// One argument: its spelling, help, and env/default/values when set.
fn argument(out: &mut String, a: &Arg) {
    let help = a.get_long_help().or(a.get_help());
    let help = help.map(|h| h.to_string()).unwrap_or_default();
    let help: Vec<String> = help
        .trim_end()
        .lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("  {l}")
            }
        })
        .collect();
    let help = help.join("\n");
    let help = help.trim_start();
    let _ = write!(out, "- `{}`", spelling(a));
    if !help.is_empty() {
        let _ = write!(out, ": {help}");
    }
    out.push('\n');
    let mut facts = Vec::new();
    if let Some(env) = a.get_env() {
        facts.push(format!("env: `{}`", env.to_string_lossy()));
    }
    let defaults: Vec<String> = a
        .get_default_values()
        .iter()
        .map(|d| d.to_string_lossy().into_owned())
        .collect();
    if !defaults.is_empty() && a.get_action().takes_values() {
        facts.push(format!("default: `{}`", defaults.join(",")));
    }
    let values: Vec<String> = a
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| format!("`{}`", v.get_name()))
        .collect();
    if !values.is_empty() && a.get_action().takes_values() {
        facts.push(format!("values: {}", values.join(", ")));
    }
    if !facts.is_empty() {
        let _ = writeln!(out, "  ({})", facts.join("; "));
    }
}

/// `-s, --long <VALUE>` for options, `<NAME>` / `[NAME]...` for positionals.
fn spelling(a: &Arg) -> String {
    let names: Vec<String> = a
        .get_value_names()
        .map(|n| n.iter().map(|s| s.to_string()).collect())
        .unwrap_or_else(|| vec![a.get_id().as_str().to_uppercase()]);
    let many = a
        .get_num_args()
        .is_some_and(|n| n.max_values() > names.len());
    let dots = if many { "..." } else { "" };
    if a.is_positional() {
        let name = names.join(" ");
        return if a.is_required_set() {
            format!("<{name}>{dots}")
        } else {
            format!("[{name}]{dots}")
        };
    }
    let mut flags = Vec::new();
    if let Some(s) = a.get_short() {
        flags.push(format!("-{s}"));
    }
    if let Some(l) = a.get_long() {
        flags.push(format!("--{l}"));
    }
    let mut s = flags.join(", ");
    if a.get_action().takes_values() {
        for n in &names {
            let _ = write!(s, " <{n}>");
        }
        s.push_str(dots);
    }
    s
}

fn visible_subcommands(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

fn bin_name(cmd: &Command) -> String {
    cmd.get_bin_name().unwrap_or(cmd.get_name()).to_string()
}

/// The GitHub-style anchor of a `## \`jobctl wallet send\`` heading.
fn anchor(path: &str) -> String {
    path.replace(' ', "-")
}

#[test]
fn reference_matches_the_clap_definitions() {
    let fresh = markdown();
    if std::env::var_os(BLESS).is_some_and(|v| v == "1") {
        std::fs::write(REFERENCE, &fresh).expect("write docs/reference.md");
        return;
    }
    let on_disk = std::fs::read_to_string(REFERENCE).unwrap_or_default();
    if on_disk != fresh {
        let line = on_disk
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| on_disk.lines().count().min(fresh.lines().count()));
        panic!(
            "docs/reference.md is stale (first difference at line {}); \
             run `{BLESS}=1 cargo test --bin jobctl reference` to rewrite it",
            line + 1
        );
    }
}

#[test]
fn reference_covers_every_command_and_the_exit_codes() {
    let text = markdown();
    let mut cli = Cli::command();
    cli.build();
    fn walk(cmd: &Command, path: &str, text: &str) {
        for sub in visible_subcommands(cmd) {
            let p = format!("{path} {}", sub.get_name());
            assert!(text.contains(&format!("## `{p}`")), "{p} missing");
            walk(sub, &p, text);
        }
    }
    walk(&cli, "jobctl", &text);
    assert!(text.contains("EXIT CODES:") && text.contains("124"));
}
