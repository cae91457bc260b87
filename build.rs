//! Build script: the commit for `jobctl --version`.
//!
//! Sets `JOBCTL_COMMIT` to, in order: `$JOBCTL_BUILD_COMMIT` (release
//! builds, Docker builds without `.git`), the short hash of `HEAD` when
//! building from a git checkout, the commit `cargo package` recorded in
//! `.cargo_vcs_info.json` (a crate from a registry), else `unknown`.
//!
//! It reruns only when the checked-out commit can have changed (HEAD, the
//! branch's ref file, packed-refs) or the variable does, so it never causes
//! a rebuild by itself.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=JOBCTL_BUILD_COMMIT");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());

    let commit = std::env::var("JOBCTL_BUILD_COMMIT")
        .ok()
        .map(|c| c.trim().to_string())
        .filter(|c| is_commit(c))
        .or_else(|| from_git(&manifest_dir))
        .or_else(|| from_vcs_info(&manifest_dir))
        .unwrap_or_else(|| "unknown".to_string());
    let short: String = commit.chars().take(12).collect();
    println!("cargo:rustc-env=JOBCTL_COMMIT={short}");
}

fn is_commit(s: &str) -> bool {
    (7..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit())
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn from_git(dir: &Path) -> Option<String> {
    // Only our own checkout: a crate unpacked inside some other repository
    // must not report that repository's commit.
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same(Path::new(&top), dir) {
        return None;
    }
    let commit = git(dir, &["rev-parse", "--short=12", "HEAD"]).filter(|c| is_commit(c))?;
    // Rerun when HEAD moves: HEAD itself (checkout), the branch's ref file
    // (commit) and packed-refs (gc). `--git-path` resolves worktrees. Only
    // files that exist: a missing one would make cargo rerun every build.
    let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watch.push(branch);
    }
    for name in watch {
        if let Some(p) = git(dir, &["rev-parse", "--git-path", &name]) {
            // A branch only in packed-refs gets its own file at the next
            // commit: watch the closest directory that exists instead.
            let mut p = dir.join(p);
            while !p.exists() {
                match p.parent() {
                    Some(parent) if name.starts_with("refs/") => p = parent.to_path_buf(),
                    _ => break,
                }
            }
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    Some(commit)
}

fn from_vcs_info(dir: &Path) -> Option<String> {
    // {"git": {"sha1": "<40 hex>"}, "path_in_vcs": ""}
    let text = std::fs::read_to_string(dir.join(".cargo_vcs_info.json")).ok()?;
    let at = text.find("\"sha1\"")?;
    let rest = &text[at + "\"sha1\"".len()..];
    let start = rest.find('"')? + 1;
    let len = rest[start..].find('"')?;
    Some(rest[start..start + len].to_string()).filter(|c| is_commit(c))
}
