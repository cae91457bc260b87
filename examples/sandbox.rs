//! The local sandbox: two relays, a cdk mint with the fake Lightning
//! backend and the reference worker, all on 127.0.0.1, then the whole loop
//! through the real `jobctl` binary: a throwaway key, a funded wallet, a
//! paid job dispatched, watched to the end, its result, logs and change;
//! then a Hive CI workflow run end to end: a repository announcement, a
//! fresh run whose runner script (standing in for `act`, reporting with
//! `jobctl ci report`) goes to the worker's blob server, the worker runs
//! it, and `jobctl runs` lists it as succeeded.
//!
//!     cargo run --example sandbox [-- --keep-running]
//!
//! A second run starts in seconds: nothing is rebuilt, and `cargo test`
//! reuses the same build (both use the dev profile). `--release` works too,
//! but builds everything again with the release profile (fat LTO: slow).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::mint::TestMint;
use common::{TestRelay, RT};
use jobctl::worker::{Worker, WorkerConfig};
use nostr_sdk::prelude::*;

fn jobctl_bin() -> PathBuf {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let bin = target.join(profile).join("jobctl");
    // `cargo run --example` does not build the binary: build it (quick when
    // fresh). Two things keep this build the same as the one `cargo run`
    // and `cargo test` make, so that no command rebuilds what another just
    // built:
    // - `--example sandbox`: cargo then resolves features as for this
    //   example and the tests (dev-dependencies included, e.g. cdk's
    //   `mint`). A bare `--bin jobctl` builds cdk, ring, rustls ... and
    //   jobctl with other features.
    // - the environment `cargo run` gave this process, less what cargo set
    //   in it: build scripts such as ring's watch CARGO_MANIFEST_DIR,
    //   CARGO_PKG_* ... (rerun-if-env-changed), and cargo compares them with
    //   its own environment, where they are normally unset.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut c = Command::new(cargo);
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let set_by_cargo = ["CARGO_PKG_", "CARGO_CFG_", "CARGO_MANIFEST_"]
            .iter()
            .any(|p| key.starts_with(p))
            || [
                "CARGO",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&key);
        if set_by_cargo {
            c.env_remove(key);
        }
    }
    c.args([
        "build",
        "--quiet",
        "--bin",
        "jobctl",
        "--example",
        "sandbox",
    ])
    .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile == "release" {
        c.arg("--release");
    }
    let ok = c.status().map(|s| s.success()).unwrap_or(false);
    assert!(ok && bin.exists(), "could not build the jobctl binary");
    bin
}

/// A runner script that stands in for `act`: it writes a log and reports
/// the run with `jobctl ci report` (the job's environment has no HOME).
fn runner_script(bin: &std::path::Path) -> String {
    format!(
        "set -u\nexport HOME=\"$(mktemp -d)\"\nlog=\"$HOME/act.log\"\n\
         echo \"[$HIVE_CI_WORKFLOW] act stand-in on $HIVE_CI_BRANCH: 1 job, 3 steps passed\" >\"$log\"\n\
         '{}' ci report --exit-code 0 --duration 1 --log \"$log\"\n",
        bin.display()
    )
}

/// The Hive CI part: announce a repository, start a fresh run of one of
/// its workflows on the worker, follow it and list the repository's runs.
fn hive_ci(
    run: &dyn Fn(&[&str]) -> String,
    bin: &std::path::Path,
    home: &std::path::Path,
    relays: &[TestRelay],
    blobs: &str,
) {
    let key = std::fs::read_to_string(home.join("config/jobctl/key")).expect("key file");
    let me = Keys::parse(key.trim()).expect("key");
    let repo = GitRepositoryAnnouncement {
        id: "sandbox".into(),
        name: Some("sandbox".into()),
        description: Some("a repository for the Hive CI sandbox".into()),
        web: vec![],
        clone: vec![],
        relays: relays
            .iter()
            .map(|r| RelayUrl::parse(&r.url).expect("url"))
            .collect(),
        euc: None,
        maintainers: vec![],
    };
    let ann = EventBuilder::git_repository_announcement(repo)
        .expect("announcement")
        .sign_with_keys(&me)
        .expect("sign");
    let all: Vec<&TestRelay> = relays.iter().collect();
    common::publish(&me, &all, &[ann]);
    let coord = format!("30617:{}:sandbox", me.public_key().to_hex());
    eprintln!("\nsandbox: announced repository {coord}");
    let script = home.join("runner.sh");
    std::fs::write(&script, runner_script(bin)).expect("runner script");
    let script = script.to_str().expect("path");
    let id = run(&[
        "rerun",
        "--repo",
        &coord,
        "--workflow",
        ".github/workflows/ci.yml",
        "--branch",
        "main",
        "--blossom",
        blobs,
        "--script",
        script,
        "--amount",
        "5",
    ]);
    run(&["watch", &id, "--exit-status", "--timeout", "30s"]);
    run(&["logs", &id]);
    let listed = run(&["runs", "--repo", &coord, "--status", "success"]);
    if !listed.lines().any(|l| l == id) {
        eprintln!("sandbox: `jobctl runs` does not list run {id} as succeeded");
        std::process::exit(1);
    }
}

fn main() {
    let keep = std::env::args().any(|a| a == "--keep-running");
    let bin = jobctl_bin();
    let started = std::time::Instant::now();
    let home = tempfile::tempdir().expect("tempdir");
    let relays = [TestRelay::start(), TestRelay::start()];
    let mint = TestMint::start();
    let relay_list = relays
        .iter()
        .map(|r| r.url.clone())
        .collect::<Vec<_>>()
        .join(",");

    // The reference worker, with its own key, wallet and log store.
    let wkeys = Keys::generate();
    let cfg = WorkerConfig {
        name: "sandbox worker".into(),
        allow_cmds: vec!["echo".into(), "bash".into()],
        price_per_second: 1,
        mints: vec![mint.url.clone()],
        min_duration: 1,
        max_duration: 60,
        blob_dir: Some(home.path().join("worker/blobs")),
        wallet_dir: Some(home.path().join("worker/wallet")),
        ..Default::default()
    };
    let urls: Vec<RelayUrl> = relays
        .iter()
        .map(|r| RelayUrl::parse(&r.url).expect("url"))
        .collect();
    let worker = RT
        .block_on(Worker::start(cfg, wkeys.clone(), &urls))
        .expect("worker");
    let npub = wkeys.public_key().to_bech32().expect("npub");

    let env = [
        ("HOME", home.path().to_path_buf()),
        ("XDG_CONFIG_HOME", home.path().join("config")),
        ("XDG_DATA_HOME", home.path().join("data")),
    ];
    let run = |args: &[&str]| -> String {
        eprintln!("\n$ jobctl {}", args.join(" "));
        let out = Command::new(&bin)
            .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
            .env("JOBCTL_RELAYS", &relay_list)
            .env("JOBCTL_WORKER", &npub)
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .expect("run jobctl");
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !stdout.is_empty() {
            println!("{stdout}");
        }
        if !out.status.success() {
            eprintln!("sandbox: `jobctl {}` exited {}", args.join(" "), out.status);
            std::process::exit(1);
        }
        stdout
    };

    eprintln!(
        "sandbox: relays {relay_list}; mint {}; worker {npub}",
        mint.url
    );
    run(&["key", "generate"]);
    run(&["wallet", "mint", "1000", "--mint", &mint.url]);
    let id = run(&[
        "rerun", "--amount", "20", "--cmd", "echo", "--", "hello", "from", "the", "loom", "sandbox",
    ]);
    run(&["watch", &id, "--exit-status", "--timeout", "30s"]);
    run(&["show", &id]);
    run(&["logs", &id]);
    run(&["reclaim", &id]);
    run(&["wallet", "balance"]);
    hive_ci(&run, &bin, home.path(), &relays, &worker.blob_base);
    eprintln!(
        "\nsandbox: relays, mint, worker and the whole job loop took {:.1}s",
        started.elapsed().as_secs_f64()
    );

    if keep {
        eprintln!("\nsandbox: still running. In another shell:");
        for (k, v) in &env {
            eprintln!("  export {k}={}", v.display());
        }
        eprintln!("  export JOBCTL_RELAYS={relay_list}");
        eprintln!("  export JOBCTL_WORKER={npub}");
        eprintln!(
            "  jobctl rerun --amount 10 --cmd echo -- hi   # then watch, logs, reclaim, stats"
        );
        eprintln!("Ctrl-C stops it.");
        RT.block_on(async {
            let _ = tokio::signal::ctrl_c().await;
        });
    }
    RT.block_on(worker.shutdown());
}
