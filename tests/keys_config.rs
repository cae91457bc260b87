//! `jobctl key`, `jobctl config` and `jobctl completions`: files, modes,
//! precedence, and that no secret ever reaches stdout or stderr.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use nostr_sdk::prelude::*;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn generate_writes_a_private_key_file_and_prints_the_npub() {
    let env = TestEnv::bare();
    let out = env.cmd().args(["key", "generate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let npub = stdout(&out);
    assert!(npub.starts_with("npub1"), "{npub}");
    assert_eq!(mode(&env.key_path()), 0o600);
    let text = std::fs::read_to_string(env.key_path()).unwrap();
    assert!(text.starts_with("nsec1"));
    assert!(!stderr(&out).contains(text.trim()) && !npub.contains(text.trim()));

    // Never overwrite a key by accident.
    let again = env.cmd().args(["key", "generate"]).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--force"));
    assert_eq!(std::fs::read_to_string(env.key_path()).unwrap(), text);
    let forced = env
        .cmd()
        .args(["key", "generate", "--force"])
        .output()
        .unwrap();
    assert_eq!(forced.status.code(), Some(0));
    assert_ne!(std::fs::read_to_string(env.key_path()).unwrap(), text);
}

#[test]
fn show_prints_public_parts_only() {
    let env = TestEnv::new();
    let out = env.cmd().args(["key", "show"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let s = stdout(&out);
    let pk = env.keys.public_key();
    assert_eq!(s, format!("{}\n{}", pk.to_bech32().unwrap(), pk.to_hex()));
    let secret_hex = env.keys.secret_key().to_secret_hex();
    let nsec = env.keys.secret_key().to_bech32().unwrap();
    for text in [s, stderr(&out)] {
        assert!(!text.contains(&secret_hex) && !text.contains(&nsec));
    }
    let out = env.cmd().args(["key", "show", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hex"], pk.to_hex());
}

#[test]
fn import_nsec_and_hex_from_stdin() {
    let env = TestEnv::bare();
    let keys = Keys::generate();
    let out = env
        .cmd()
        .args(["key", "import"])
        .write_stdin(keys.secret_key().to_secret_hex())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), keys.public_key().to_bech32().unwrap());
    assert_eq!(mode(&env.key_path()), 0o600);
    let out = env.cmd().args(["key", "show"]).output().unwrap();
    assert!(stdout(&out).contains(&keys.public_key().to_hex()));

    let other = Keys::generate();
    let out = env
        .cmd()
        .args(["key", "import", "--force", "-"])
        .write_stdin(other.secret_key().to_bech32().unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), other.public_key().to_bech32().unwrap());

    let out = env
        .cmd()
        .args(["key", "import", "--force"])
        .write_stdin("not a key")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn import_ncryptsec_keeps_it_encrypted_and_signs_with_the_passphrase() {
    let env = TestEnv::bare();
    let keys = Keys::generate();
    let enc = EncryptedSecretKey::new(keys.secret_key(), "correct horse", 8, KeySecurity::Medium)
        .unwrap()
        .to_bech32()
        .unwrap();
    let out = env
        .cmd()
        .args(["key", "import"])
        .env("JOBCTL_KEY_PASSPHRASE", "correct horse")
        .write_stdin(enc.clone())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(env.key_path()).unwrap().trim(), enc);

    // Signing needs the passphrase; a wrong one is a clear error.
    let dry = |pass: &str| {
        env.rerun_unpaid(&Keys::generate().public_key().to_hex(), &[])
            .arg("--dry-run")
            .env("JOBCTL_KEY_PASSPHRASE", pass)
            .output()
            .unwrap()
    };
    let ok = dry("correct horse");
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(
        Event::from_json(stdout(&ok)).unwrap().pubkey,
        keys.public_key()
    );
    let bad = dry("wrong");
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("passphrase"));

    let wrong = env
        .cmd()
        .args(["key", "import", "--force"])
        .env("JOBCTL_KEY_PASSPHRASE", "nope")
        .write_stdin(enc)
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2));
}

#[test]
fn key_file_flag_and_env_key() {
    let env = TestEnv::bare();
    let keys = Keys::generate();
    let out = env
        .cmd()
        .args(["key", "show"])
        .env("JOBCTL_SECRET_KEY", keys.secret_key().to_bech32().unwrap())
        .output()
        .unwrap();
    assert!(stdout(&out).contains(&keys.public_key().to_hex()));
    let out = env
        .cmd()
        .args(["key", "show"])
        .env("JOBCTL_SECRET_KEY", "garbage")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains("garbage"));

    // --key-file generate writes there.
    let path = env.home().join("elsewhere/my.key");
    let out = env
        .cmd()
        .args(["--key-file"])
        .arg(&path)
        .args(["key", "generate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mode(&path), 0o600);
    assert!(!env.key_path().exists());
}

#[test]
fn config_init_show_path() {
    let env = TestEnv::bare();
    let out = env.cmd().args(["config", "path"]).output().unwrap();
    assert_eq!(stdout(&out), env.config_path().display().to_string());

    let out = env.cmd().args(["config", "init"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(env.config_path().exists());
    let again = env.cmd().args(["config", "init"]).output().unwrap();
    assert_eq!(again.status.code(), Some(2));

    let out = env
        .cmd()
        .args(["config", "show"])
        .env("JOBCTL_RELAYS", "ws://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shown: toml::Value = toml::from_str(&stdout(&out)).unwrap();
    assert_eq!(shown["relays"].as_array().unwrap().len(), 1);
    assert_eq!(shown["cmd"].as_str(), Some("act"));

    let custom = env.home().join("other.toml");
    let out = env
        .cmd()
        .args(["config", "path"])
        .env("JOBCTL_CONFIG", &custom)
        .output()
        .unwrap();
    assert_eq!(stdout(&out), custom.display().to_string());
}

#[test]
fn completions_and_help() {
    let env = TestEnv::bare();
    for shell in ["bash", "zsh", "fish"] {
        let out = env.cmd().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert!(stdout(&out).contains("rerun"), "{shell}");
    }
    let out = env.cmd().args(["rerun", "--help"]).output().unwrap();
    let help = stdout(&out);
    assert!(help.contains("EXIT CODES") && help.contains("--min-accept"));
    // The token's env value is never echoed in help.
    let out = env
        .cmd()
        .args(["rerun", "--help"])
        .env("JOBCTL_TOKEN", "cashuBsecretmoney")
        .output()
        .unwrap();
    assert!(!stdout(&out).contains("secretmoney"));
}
