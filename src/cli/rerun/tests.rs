//! Fast tests of `rerun`'s flag resolution and rendering (no relays).

use super::flags::{payment_flags, token};
use super::report::dispatching_line;
use super::*;
use crate::cli::{Cli, Command};
use clap::Parser;
use jobctl::dispatch::DispatchReport;
use jobctl::keys::npub;
use jobctl::relays::{RelayOutcome, RelayStatus};
use jobctl::settings::{GlobalFlags, Settings};

fn ctx(quiet: bool) -> (Ctx, crate::cli::SharedBuf, crate::cli::SharedBuf) {
    let settings = Settings::resolve(GlobalFlags {
        journal: Some("/nonexistent/journal.sqlite".into()),
        ..GlobalFlags::default()
    });
    Ctx::for_test(settings, quiet, 1_700_000_000)
}

fn args(flags: &[&str]) -> RerunArgs {
    let argv = ["jobctl", "rerun"].iter().chain(flags);
    match Cli::try_parse_from(argv).expect("flags parse").command {
        Command::Rerun(a) => *a,
        _ => unreachable!(),
    }
}

fn report(accepted: bool) -> DispatchReport {
    let event = EventBuilder::text_note("x")
        .sign_with_keys(&Keys::generate())
        .unwrap();
    let outcome = RelayOutcome {
        url: "ws://127.0.0.1:7777".into(),
        status: if accepted {
            RelayStatus::Accepted
        } else {
            RelayStatus::Rejected
        },
        message: if accepted { "" } else { "blocked: no" }.into(),
        latency_ms: 3,
    };
    dispatch::report(event, None, vec![outcome], 1)
}

#[test]
fn a_published_job_prints_its_id_and_the_tally() {
    let (ctx, out, err) = ctx(false);
    let r = report(true);
    assert_eq!(print_report(&ctx, &r, false).unwrap(), exit::OK);
    assert_eq!(out.text(), format!("{}\n", r.id));
    let err = err.text();
    let tally = format!(
        "published: job {} accepted by 1/1 relays (need 1)",
        &r.id[..12]
    );
    assert!(err.contains(&tally), "{err}");
    assert!(!err.contains("why:"), "{err}");
}

#[test]
fn a_job_short_of_relays_exits_1_and_says_why() {
    let (ctx, out, err) = ctx(false);
    let r = report(false);
    assert_eq!(print_report(&ctx, &r, false).unwrap(), exit::FAILURE);
    assert_eq!(out.text(), format!("{}\n", r.id));
    let err = err.text();
    assert!(err.contains("NOT published"), "{err}");
    assert!(err.contains("why: "), "{err}");
    assert!(err.contains("`jobctl republish --all` retries"), "{err}");
}

#[test]
fn json_is_one_object_on_stdout_and_nothing_else() {
    let (ctx, out, err) = ctx(false);
    let r = report(true);
    assert_eq!(print_report(&ctx, &r, true).unwrap(), exit::OK);
    let v: serde_json::Value = serde_json::from_str(out.text().trim()).unwrap();
    assert_eq!(v["id"], r.id.as_str());
    assert_eq!(v["accepted"], 1);
    assert_eq!(err.text(), "");
}

#[test]
fn flags_become_job_inputs() {
    let a = args(&[
        "--worker", "w", "--cmd", "make", "--env", "A=1", "--secret", "S=2", "--run", "r", "--p",
        "self", "--", "x", "y",
    ]);
    let i = inputs(&a);
    assert_eq!(i.worker.as_deref(), Some("w"));
    assert_eq!(i.p_tag.as_deref(), Some("self"));
    assert_eq!(
        (i.cmd.as_deref(), i.run.as_deref()),
        (Some("make"), Some("r"))
    );
    assert_eq!(i.args, vec!["x".to_string(), "y".to_string()]);
    assert_eq!((i.env, i.secrets), (vec!["A=1".into()], vec!["S=2".into()]));
    let cfg = Config::defaults("config.toml".into());
    let f = payment_flags(&cfg, &args(&["--amount", "5", "--lock", "--strict"]));
    assert_eq!((f.amount, f.lock, f.strict), (Some(5), true, true));
    assert_eq!(f.refund_after, "72h");
    assert_eq!(f.token_format, cfg.token_format);
}

#[test]
fn stdin_cannot_be_shared_by_the_input_and_the_token() {
    let (ctx, _, err) = ctx(false);
    let worker = Keys::generate().public_key().to_hex();
    let a = args(&[
        "--worker", &worker, "--stdin", "-", "--token", "-", "--p", "self",
    ]);
    let cfg = Config::defaults("config.toml".into());
    let d = Rerun {
        ctx: &ctx,
        a: &a,
        cfg: &cfg,
        relays: vec![],
        deadline: ctx.deadline(),
        min_accept: 1,
    };
    let e = d.spec(None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "--stdin - cannot be combined with --token -: both would read stdin"
    );
    assert_eq!(e.exit_code(), exit::USAGE);
    // The --p self warning still reaches stderr before the error.
    assert!(
        err.text().starts_with("warning: --p self: "),
        "{}",
        err.text()
    );
}

#[test]
fn unpaid_needs_no_token_and_a_bad_token_is_bad_input() {
    assert!(token(&args(&["--unpaid"])).unwrap().is_none());
    let e = token(&args(&["--token", "cashuAnope"])).unwrap_err();
    assert_eq!(e.exit_code(), exit::USAGE);
}

#[test]
fn the_dispatching_line_names_the_command_worker_and_payment() {
    let worker = Keys::generate().public_key();
    let spec = JobSpec {
        worker,
        p_tag: jobctl::protocol::PTag::Worker,
        cmd: "echo".into(),
        args: vec!["a\u{1b}b".into()],
        token: None,
        parent: None,
        env: vec![],
        secrets: vec![],
        content: String::new(),
    };
    let line = dispatching_line(&spec, 2, 0, None);
    assert_eq!(
        line,
        format!(
            "dispatching `echo a\\x1bb` to worker {} with no payment (unpaid) via 2 relay(s)",
            npub(&worker)
        )
    );
}
