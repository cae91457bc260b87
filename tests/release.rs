//! Shipping jobctl: `--version`, the release workflow, the install action
//! (run for real against a release laid out on disk), the example CI
//! workflow, the Docker image recipe, the release profile and the vendored
//! protoc that lets a machine with only a Rust toolchain build the tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

fn yaml(rel: &str) -> Value {
    serde_norway::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"))
}

fn steps(job: &Value) -> Vec<Value> {
    job["steps"].as_array().cloned().unwrap_or_default()
}

fn all_runs(steps: &[Value]) -> String {
    steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn version_names_the_version_and_the_commit() {
    for flag in ["--version", "-V"] {
        let out = Command::new(env!("CARGO_BIN_EXE_jobctl"))
            .arg(flag)
            .output()
            .expect("run jobctl");
        assert!(out.status.success(), "{flag}: {out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let prefix = format!("jobctl {} (commit ", env!("CARGO_PKG_VERSION"));
        let rest = stdout
            .trim()
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{flag}: unexpected {stdout:?}"));
        assert!(
            rest == "unknown" || (rest.len() >= 7 && rest.chars().all(|c| c.is_ascii_hexdigit())),
            "{flag}: commit {rest:?}"
        );
        // Built from this checkout: the commit is HEAD's (build.rs reruns
        // when HEAD moves).
        if std::env::var_os("JOBCTL_BUILD_COMMIT").is_none() {
            let head = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .current_dir(root())
                .output();
            if let Ok(h) = head {
                if h.status.success() {
                    let h = String::from_utf8_lossy(&h.stdout).trim().to_string();
                    assert_eq!(rest, h, "{flag}: the commit is not HEAD's");
                }
            }
        }
    }
}

#[test]
fn release_workflow_builds_static_linux_and_macos_binaries_with_checksums_on_tags() {
    let wf = yaml(".github/workflows/release.yml");
    let tags = wf["on"]["push"]["tags"].as_array().expect("on.push.tags");
    assert!(tags
        .iter()
        .any(|t| t.as_str().is_some_and(|t| t.starts_with('v'))));

    let build = &wf["jobs"]["build"];
    let targets: Vec<&str> = build["strategy"]["matrix"]["include"]
        .as_array()
        .expect("matrix.include")
        .iter()
        .filter_map(|e| e["target"].as_str())
        .collect();
    for t in [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
    ] {
        assert!(targets.contains(&t), "no {t} in {targets:?}");
    }
    let build_runs = all_runs(&steps(build));
    assert!(build_runs.contains("cargo build --release --locked"));
    assert!(build_runs.contains("statically linked"), "the static check");
    assert!(build_runs.contains("shasum -a 256"), "per-archive checksum");
    // The names the install action downloads.
    assert!(build_runs.contains(r#"name="jobctl-$TAG-$TARGET""#));

    let release = &wf["jobs"]["release"];
    assert_eq!(release["needs"], "build");
    assert_eq!(release["permissions"]["contents"], "write");
    let release_runs = all_runs(&steps(release));
    assert!(release_runs.contains("sha256sum -c"));
    assert!(release_runs.contains("SHA256SUMS"));
    assert!(release_runs.contains("gh release create"));
    // Least privilege everywhere else.
    assert_eq!(wf["permissions"]["contents"], "read");
}

#[test]
fn ci_workflow_runs_the_ci_script() {
    let wf = yaml(".github/workflows/ci.yml");
    let runs = all_runs(&steps(&wf["jobs"]["test"]));
    assert!(runs.contains("bash .ci/run"), "{runs}");
}

fn action() -> Value {
    yaml("action.yml")
}

fn action_step(id: &str) -> Value {
    steps(&action()["runs"])
        .into_iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in action.yml"))
}

#[test]
fn action_is_composite_and_its_scripts_take_inputs_only_from_env() {
    let a = action();
    assert_eq!(a["runs"]["using"], "composite");
    for input in ["version", "sha256", "repository", "token"] {
        assert!(a["inputs"][input].is_object(), "input {input}");
    }
    assert!(a["outputs"]["path"].is_object() && a["outputs"]["version"].is_object());
    let steps = steps(&a["runs"]);
    assert!(
        steps.iter().any(|s| s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/cache@"))),
        "the binary is cached"
    );
    for s in &steps {
        if let Some(run) = s["run"].as_str() {
            assert_eq!(s["shell"], "bash", "composite run steps need a shell");
            // No expression is pasted into a script (injection; and it keeps
            // the scripts runnable as they are, as below).
            assert!(!run.contains("${{"), "an expression inside a script: {run}");
        }
    }
}

/// Runs one of the action's scripts with bash and the given environment;
/// returns (success, stderr + stdout).
fn run_step(id: &str, env: &BTreeMap<&str, String>) -> (bool, String) {
    let step = action_step(id);
    let script = step["run"].as_str().expect("run");
    let mut cmd = Command::new("bash");
    cmd.args(["-e", "-c", script]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // The step's own env: values come from expressions, given here instead.
    let out = cmd.output().expect("bash");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    (out.status.success(), text)
}

fn outputs(file: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn sha256_hex(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .or_else(|_| {
            Command::new("shasum")
                .args(["-a", "256"])
                .arg(path)
                .output()
        })
        .expect("sha256sum or shasum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("hash")
        .to_string()
}

#[test]
fn action_installs_a_release_and_refuses_a_bad_checksum() {
    let runner_os = match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "macOS",
        _ => return,
    };
    let runner_arch = match std::env::consts::ARCH {
        "x86_64" => "X64",
        "aarch64" => "ARM64",
        _ => return,
    };
    if !have("curl") || !have("tar") {
        eprintln!("skipped: curl or tar missing");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = tmp.path();

    // 1. Resolve: repository and version from where the runner unpacked the
    //    action (OWNER/NAME/REF), nothing asked of the network.
    let out_file = t.join("resolve.out");
    let mut env = BTreeMap::from([
        ("RUNNER_OS", runner_os.to_string()),
        ("RUNNER_ARCH", runner_arch.to_string()),
        ("RUNNER_TOOL_CACHE", t.join("tools").display().to_string()),
        ("RUNNER_TEMP", t.display().to_string()),
        ("GITHUB_OUTPUT", out_file.display().to_string()),
        ("INPUT_VERSION", String::new()),
        ("INPUT_REPOSITORY", String::new()),
        ("INPUT_TOKEN", String::new()),
        (
            "ACTION_PATH",
            "/home/runner/work/_actions/acme/jobctl/v9.9.9".to_string(),
        ),
    ]);
    let (ok, log) = run_step("resolve", &env);
    assert!(ok, "resolve failed: {log}");
    let o = outputs(&out_file);
    assert_eq!(o["repository"], "acme/jobctl");
    assert_eq!(o["version"], "v9.9.9");
    let target = o["target"].clone();
    assert!(target.contains(std::env::consts::ARCH), "{target}");
    let dir = PathBuf::from(&o["dir"]);
    assert!(dir.starts_with(t.join("tools")), "{dir:?}");

    // An explicit version wins; junk is refused before any download.
    env.insert("INPUT_VERSION", "1.2.3".into());
    std::fs::remove_file(&out_file).expect("rm");
    assert!(run_step("resolve", &env).0);
    assert_eq!(outputs(&out_file)["version"], "v1.2.3");
    env.insert("INPUT_VERSION", "v1/../../x".into());
    let (ok, log) = run_step("resolve", &env);
    assert!(!ok && log.contains("is not a release tag"), "{log}");
    env.insert("RUNNER_OS", "Windows".into());
    env.insert("INPUT_VERSION", String::new());
    let (ok, log) = run_step("resolve", &env);
    assert!(!ok && log.contains("no release binary"), "{log}");

    // 2. A release on disk, laid out as the release workflow names it,
    //    served through GITHUB_SERVER_URL=file://...
    let name = format!("jobctl-v9.9.9-{target}");
    let stage = t.join("stage").join(&name);
    std::fs::create_dir_all(&stage).expect("mkdir");
    let fake = "#!/bin/sh\necho 'jobctl 9.9.9 (commit abcdef123456)'\n";
    std::fs::write(stage.join("jobctl"), fake).expect("write");
    let dl = t.join("server/acme/jobctl/releases/download/v9.9.9");
    std::fs::create_dir_all(&dl).expect("mkdir");
    let archive = dl.join(format!("{name}.tar.gz"));
    let st = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(t.join("stage"))
        .arg(&name)
        .status()
        .expect("tar");
    assert!(st.success());
    let good = sha256_hex(&archive);
    let sums = dl.join(format!("{name}.tar.gz.sha256"));
    std::fs::write(&sums, format!("{good}  {name}.tar.gz\n")).expect("write");

    let install = |expected: &str| {
        let env = BTreeMap::from([
            ("REPO", "acme/jobctl".to_string()),
            ("VERSION", "v9.9.9".to_string()),
            ("TARGET", target.clone()),
            ("DIR", dir.display().to_string()),
            ("EXPECTED_SHA256", expected.to_string()),
            (
                "GITHUB_SERVER_URL",
                format!("file://{}", t.join("server").display()),
            ),
            ("RUNNER_TEMP", t.display().to_string()),
        ]);
        run_step("install", &env)
    };

    // A checksum that does not match: nothing is installed.
    std::fs::write(&sums, format!("{}  {name}.tar.gz\n", "0".repeat(64))).expect("write");
    let (ok, log) = install("");
    assert!(!ok && log.contains("checksum mismatch"), "{log}");
    assert!(!dir.join("jobctl").exists());
    // A pinned sha256 input beats the release's own file.
    std::fs::write(&sums, format!("{good}  {name}.tar.gz\n")).expect("write");
    let (ok, log) = install(&"a".repeat(64));
    assert!(!ok && log.contains("checksum mismatch"), "{log}");
    assert!(!dir.join("jobctl").exists());

    // The right one (pinned in upper case, as some tools print it).
    let (ok, log) = install(&good.to_uppercase());
    assert!(ok, "install failed: {log}");
    let (ok, log) = install("");
    assert!(ok, "install failed: {log}");

    // 3. On PATH, and it runs.
    let path_file = t.join("path.out");
    let env = BTreeMap::from([
        ("DIR", dir.display().to_string()),
        ("GITHUB_PATH", path_file.display().to_string()),
    ]);
    let (ok, log) = run_step("path", &env);
    assert!(ok, "{log}");
    assert!(log.contains("jobctl 9.9.9 (commit abcdef123456)"), "{log}");
    assert_eq!(
        std::fs::read_to_string(&path_file)
            .expect("GITHUB_PATH")
            .trim(),
        dir.display().to_string()
    );
}

#[test]
fn example_workflow_dispatches_with_secrets_an_idempotency_key_and_watch_exit_status() {
    let wf = yaml("examples/github-workflow.yml");
    let jobs = wf["jobs"].as_object().expect("jobs");
    let job = jobs.values().next().expect("a job");
    let steps = steps(job);
    assert!(
        steps
            .iter()
            .any(|s| s["uses"].as_str().is_some_and(|u| u.contains("/jobctl@v"))),
        "installs jobctl with the action"
    );
    let dispatch = steps
        .iter()
        .find(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("jobctl rerun"))
        })
        .expect("a dispatch step");
    let env = &dispatch["env"];
    assert_eq!(env["JOBCTL_SECRET_KEY"], "${{ secrets.JOBCTL_SECRET_KEY }}");
    assert_eq!(env["JOBCTL_TOKEN"], "${{ secrets.JOBCTL_TOKEN }}");
    assert_eq!(
        env["JOBCTL_IDEMPOTENCY_KEY"],
        "${{ github.run_id }}-${{ github.run_attempt }}"
    );
    let run = dispatch["run"].as_str().unwrap_or_default();
    assert!(!run.contains("--token"), "the token stays out of argv");
    assert!(!run.contains("${{"), "no expression inside the script");
    let watch = steps
        .iter()
        .find(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("jobctl watch"))
        })
        .expect("a watch step");
    let run = watch["run"].as_str().unwrap_or_default();
    assert!(run.contains("--exit-status"), "{run}");
    assert!(!watch["continue-on-error"].as_bool().unwrap_or(false));
}

#[test]
fn dockerfile_builds_a_static_binary_into_a_small_non_root_image() {
    let d = read("Dockerfile");
    let froms: Vec<&str> = d.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(froms[0].contains("-alpine AS build"), "{froms:?}");
    assert!(froms[1].starts_with("FROM alpine:"), "{froms:?}");
    assert!(d.contains("cargo build --release --locked --bin jobctl"));
    assert!(d.contains("COPY --from=build"));
    assert!(d
        .lines()
        .any(|l| l.starts_with("USER ") && !l.contains("root")));
    let ignore = read(".dockerignore");
    for p in ["/target", "/.git"] {
        assert!(
            ignore.lines().any(|l| l.trim() == p),
            "{p} in .dockerignore"
        );
    }
}

#[test]
fn release_profile_strips_symbols() {
    let manifest: toml::Value = read("Cargo.toml").parse().expect("Cargo.toml");
    let release = &manifest["profile"]["release"];
    assert!(
        release["strip"] == toml::Value::Boolean(true)
            || release["strip"] == toml::Value::String("symbols".into()),
        "{release:?}"
    );
    // Unwinding stays: panics in tasks are caught and reported.
    assert!(release
        .get("panic")
        .is_none_or(|p| p.as_str() == Some("unwind")));
}

#[test]
fn vendored_protoc_runs_without_a_protoc_on_path() {
    let config: toml::Value = read(".cargo/config.toml").parse().expect("config.toml");
    let protoc = &config["env"]["PROTOC"];
    assert_eq!(protoc["value"].as_str(), Some("tools/protoc"));
    assert_eq!(protoc["relative"].as_bool(), Some(true));
    let supported = matches!(
        (std::env::consts::OS, std::env::consts::ARCH),
        ("linux" | "macos", "x86_64" | "aarch64")
    );
    if !supported {
        return;
    }
    // A `protoc` first on PATH that fails: the wrapper must not need it.
    let stub = tempfile::tempdir().expect("tempdir");
    let fake = stub.path().join("protoc");
    std::fs::write(&fake, "#!/bin/sh\nexit 97\n").expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let path = format!(
        "{}:{}",
        stub.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(root().join("tools/protoc"))
        .arg("--version")
        .env("PATH", path)
        .env_remove("PROTOC")
        .output()
        .expect("run tools/protoc");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("libprotoc "));
}
