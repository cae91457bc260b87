//! The user's signing key: where it comes from (`--key-file`, then
//! `JOBCTL_SECRET_KEY`, then the config's key file), how key files are
//! written (0600, never overwritten by accident) and read (refused when
//! group or others can read them, as ssh does). A secret key is never
//! printed or logged: `Debug` of the loaded key shows only the npub. The
//! library never prompts: an ncryptsec key's passphrase comes from
//! `JOBCTL_KEY_PASSPHRASE`, else from the caller's [`AskPassphrase`].

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use nostr_sdk::prelude::*;

use crate::error::{Error, Result};

pub use crate::files::{create_private_dir, create_private_file, refuse_open, too_open, FileLock};
pub use crate::settings::env::KEY_PASSPHRASE as ENV_PASSPHRASE;
pub use crate::settings::env::SECRET_KEY as ENV_SECRET_KEY;

/// Where the signing key was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `--key-file PATH`.
    Flag(PathBuf),
    /// `JOBCTL_SECRET_KEY`.
    Env,
    /// The config's key file.
    Config(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Flag(p) => write!(f, "--key-file {}", p.display()),
            KeySource::Env => write!(f, "${ENV_SECRET_KEY}"),
            KeySource::Config(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A loaded signing key and where it came from.
#[derive(Clone)]
pub struct SigningKey {
    /// The keys (secret inside; never print them).
    pub keys: Keys,
    /// Where they came from.
    pub source: KeySource,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningKey({}, from {})",
            npub(&self.keys.public_key()),
            self.source
        )
    }
}

/// The npub of a key (hex if bech32 fails, which it cannot for valid keys).
pub fn npub(pk: &PublicKey) -> String {
    pk.to_bech32().unwrap_or_else(|_| pk.to_hex())
}

/// How to ask for the passphrase of an ncryptsec key when
/// `JOBCTL_KEY_PASSPHRASE` is unset: the binary prompts on the terminal;
/// `None` (no terminal to ask on) makes an encrypted key an error.
pub type AskPassphrase = fn() -> std::io::Result<String>;

/// Resolve the signing key: `flag` beats `JOBCTL_SECRET_KEY` beats the
/// config's key file. `ask` gets an ncryptsec key's passphrase.
pub fn resolve(
    flag: Option<&Path>,
    config_key_file: &Path,
    ask: Option<AskPassphrase>,
) -> Result<SigningKey> {
    if let Some(path) = flag {
        let keys = load_key_file(path, ask)?;
        return Ok(SigningKey {
            keys,
            source: KeySource::Flag(path.to_path_buf()),
        });
    }
    if let Ok(v) = std::env::var(ENV_SECRET_KEY) {
        if !v.trim().is_empty() {
            let keys = parse_plain_secret(v.trim()).map_err(|_| {
                Error::input(format!(
                    "{ENV_SECRET_KEY} does not hold a secret key (nsec or 64-char hex)"
                ))
            })?;
            return Ok(SigningKey {
                keys,
                source: KeySource::Env,
            });
        }
    }
    if !config_key_file.exists() {
        return Err(Error::KeyFile {
            path: config_key_file.to_path_buf(),
            msg: "no key found; run `jobctl key generate` or `jobctl key import`, \
                  or set JOBCTL_SECRET_KEY"
                .into(),
        });
    }
    let keys = load_key_file(config_key_file, ask)?;
    Ok(SigningKey {
        keys,
        source: KeySource::Config(config_key_file.to_path_buf()),
    })
}

/// Parse an nsec or hex secret key.
pub fn parse_plain_secret(s: &str) -> Result<Keys> {
    SecretKey::parse(s.trim())
        .map(Keys::new)
        .map_err(|_| Error::input("not a secret key (nsec or 64-char hex)"))
}

/// Parse any accepted key text: nsec, hex, or ncryptsec (NIP-49, needs the
/// passphrase from `JOBCTL_KEY_PASSPHRASE`, else from `ask`).
pub fn parse_secret_text(s: &str, ask: Option<AskPassphrase>) -> Result<Keys> {
    let s = s.trim();
    if s.starts_with("ncryptsec1") {
        let enc = EncryptedSecretKey::from_bech32(s)
            .map_err(|_| Error::input("malformed ncryptsec key"))?;
        let pass = passphrase(ask)?;
        let sk = enc
            .decrypt(&pass)
            .map_err(|_| Error::input("wrong passphrase for the ncryptsec key"))?;
        return Ok(Keys::new(sk));
    }
    parse_plain_secret(s)
}

/// `JOBCTL_KEY_PASSPHRASE`, else what `ask` gets.
fn passphrase(ask: Option<AskPassphrase>) -> Result<String> {
    if let Ok(p) = std::env::var(ENV_PASSPHRASE) {
        return Ok(p);
    }
    ask.ok_or(())
        .and_then(|ask| ask().map_err(|_| ()))
        .map_err(|()| {
            Error::input(format!(
                "the key is encrypted (ncryptsec): set {ENV_PASSPHRASE} or run in a terminal"
            ))
        })
}

/// Read a key file, refusing one that group or others can read; `ask`
/// gets an ncryptsec key's passphrase.
pub fn load_key_file(path: &Path, ask: Option<AskPassphrase>) -> Result<Keys> {
    let kerr = |msg: String| Error::KeyFile {
        path: path.to_path_buf(),
        msg,
    };
    let meta = std::fs::metadata(path).map_err(|e| kerr(format!("cannot read: {e}")))?;
    check_permissions(path, &meta)?;
    let text = std::fs::read_to_string(path).map_err(|e| kerr(format!("cannot read: {e}")))?;
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| kerr("is empty".into()))?;
    parse_secret_text(first, ask).map_err(|e| kerr(e.to_string()))
}

fn check_permissions(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    if let Some(mode) = too_open(meta) {
        return Err(Error::KeyFile {
            path: path.to_path_buf(),
            msg: format!(
                "permissions {mode:04o} are too open (readable by others); run `chmod 600 {}`",
                path.display()
            ),
        });
    }
    Ok(())
}

/// Write key text to `path` with mode 0600 (parent dirs 0700). Refuses to
/// replace an existing file unless `force`: a lost key is lost money.
pub fn write_key_file(path: &Path, text: &str, force: bool) -> Result<()> {
    if path.exists() && !force {
        return Err(Error::KeyFile {
            path: path.to_path_buf(),
            msg: "already exists; pass --force to replace it (the old key is lost)".into(),
        });
    }
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.write_all(b"\n"))
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
    }
    std::fs::rename(&tmp, path)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// Generate a new key and write it as nsec to `path`.
pub fn generate(path: &Path, force: bool) -> Result<Keys> {
    let keys = Keys::generate();
    let nsec = keys
        .secret_key()
        .to_bech32()
        .map_err(|e| Error::Runtime(format!("cannot encode key: {e}")))?;
    write_key_file(path, &nsec, force)?;
    Ok(keys)
}

/// Import key text (nsec, hex, or ncryptsec). An ncryptsec is checked by
/// decrypting it and stored encrypted as given; nsec and hex are stored as
/// nsec. `ask` gets an ncryptsec key's passphrase.
pub fn import(path: &Path, text: &str, force: bool, ask: Option<AskPassphrase>) -> Result<Keys> {
    let text = text.trim();
    let keys = parse_secret_text(text, ask)?;
    let stored = if text.starts_with("ncryptsec1") {
        text.to_string()
    } else {
        keys.secret_key()
            .to_bech32()
            .map_err(|e| Error::Runtime(format!("cannot encode key: {e}")))?
    };
    write_key_file(path, &stored, force)?;
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let keys = Keys::generate();
        let sk = SigningKey {
            keys: keys.clone(),
            source: KeySource::Env,
        };
        let dbg = format!("{sk:?}");
        assert!(!dbg.contains(&keys.secret_key().to_secret_hex()));
        assert!(dbg.contains("npub1"));
    }

    #[test]
    fn parses_nsec_and_hex() {
        let keys = Keys::generate();
        let hex = keys.secret_key().to_secret_hex();
        let nsec = keys.secret_key().to_bech32().expect("bech32");
        assert_eq!(
            parse_plain_secret(&hex).expect("hex").public_key(),
            keys.public_key()
        );
        assert_eq!(
            parse_plain_secret(&nsec).expect("nsec").public_key(),
            keys.public_key()
        );
        assert!(parse_plain_secret("npub1xyz").is_err());
    }

    #[test]
    fn an_ncryptsec_passphrase_comes_from_the_callers_prompt_never_a_library_one() {
        if std::env::var_os(ENV_PASSPHRASE).is_some() {
            return; // the environment answers first
        }
        let keys = Keys::generate();
        let enc = EncryptedSecretKey::new(keys.secret_key(), "pw", 4, KeySecurity::Medium)
            .expect("encrypt")
            .to_bech32()
            .expect("bech32");
        let right: AskPassphrase = || Ok("pw".into());
        let wrong: AskPassphrase = || Ok("nope".into());
        let no_tty: AskPassphrase = || Err(std::io::Error::other("no terminal"));
        assert_eq!(
            parse_secret_text(&enc, Some(right))
                .expect("decrypts")
                .public_key(),
            keys.public_key()
        );
        assert!(parse_secret_text(&enc, Some(wrong)).is_err());
        for ask in [None, Some(no_tty)] {
            let e = parse_secret_text(&enc, ask).expect_err("no passphrase");
            assert_eq!(
                e.to_string(),
                Error::input(format!(
                    "the key is encrypted (ncryptsec): set {ENV_PASSPHRASE} or run in a terminal"
                ))
                .to_string()
            );
        }
    }
}
