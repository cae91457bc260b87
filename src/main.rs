//! The `jobctl` binary: parse flags, call the library, print. stdout holds
//! data only; everything for humans goes to stderr.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::parse();
    init_tracing(cli.global.verbose, cli.global.quiet);
    let code = match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            cli::render::print_error(&e.to_string());
            e.exit_code()
        }
    };
    ExitCode::from(code as u8)
}

/// Logging on stderr. `-q` silences every crate but jobctl's own errors,
/// whatever `JOBCTL_LOG` says; `JOBCTL_LOG` (or `RUST_LOG`) otherwise
/// replaces the `-v` levels. Whatever the filter, lines are sanitized,
/// bounded, and the relay crates' repeats are dropped
/// ([`cli::render::log`]).
fn init_tracing(verbose: u8, quiet: bool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::EnvFilter;
    // cdk logs its own errors, which jobctl reports itself in one line:
    // its crates speak only from -v on.
    let default = match verbose {
        0 => "warn,cdk=off,cdk_common=off,cdk_sqlite=off,cdk_sql_common=off,cdk_http_client=off",
        1 => "jobctl=info,warn",
        2 => "jobctl=debug,info",
        _ => "trace",
    };
    let filter = if quiet {
        EnvFilter::new("off,jobctl=error")
    } else {
        EnvFilter::try_from_env(jobctl::settings::env::LOG)
            .or_else(|_| EnvFilter::try_from_default_env())
            .unwrap_or_else(|_| EnvFilter::new(default))
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(cli::render::log::StderrLog::new(cli::render::stderr_color()))
        .try_init();
}
