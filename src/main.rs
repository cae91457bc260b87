//! The `jobctl` binary: parse flags, call the library, print. stdout holds
//! data only; everything for humans goes to stderr.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(cli.verbose, cli.quiet);
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            jobctl::output::print_error(&e.to_string());
            e.exit_code()
        }
    };
    ExitCode::from(code as u8)
}

fn init_tracing(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    // cdk logs its own errors, which jobctl reports itself in one line:
    // its crates speak only from -v on.
    let default = match (quiet, verbose) {
        (true, _) => {
            "error,cdk=off,cdk_common=off,cdk_sqlite=off,cdk_sql_common=off,cdk_http_client=off"
        }
        (_, 0) => {
            "warn,cdk=off,cdk_common=off,cdk_sqlite=off,cdk_sql_common=off,cdk_http_client=off"
        }
        (_, 1) => "jobctl=info,warn",
        (_, 2) => "jobctl=debug,info",
        _ => "trace",
    };
    let from_env =
        EnvFilter::try_from_env("JOBCTL_LOG").or_else(|_| EnvFilter::try_from_default_env());
    let user_chose = from_env.is_ok();
    let mut filter = from_env.unwrap_or_else(|_| EnvFilter::new(default));
    // The nostr crates log whole messages at debug/trace, and a job request
    // carries a payment token: cap them at info whatever was asked for.
    let caps: &[&str] = if user_chose || verbose >= 3 {
        &[
            "nostr",
            "nostr_sdk",
            "nostr_relay_pool",
            "nostr_database",
            "async_wsocket",
            "tungstenite",
            "tokio_tungstenite",
        ]
    } else {
        &[]
    };
    for target in caps {
        if let Ok(d) = format!("{target}=info").parse() {
            filter = filter.add_directive(d);
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(jobctl::output::stderr_color())
        .with_target(false)
        .try_init();
}
