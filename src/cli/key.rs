//! `jobctl key`: generate, import and show the signing key.

use std::io::IsTerminal;

use clap::Subcommand;
use jobctl::error::{exit, Error, Result};
use jobctl::keys::{self, npub};

use super::{read_stdin, Ctx};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a new key file (mode 0600) and print its npub.
    Generate {
        /// Replace an existing key file (the old key is lost).
        #[arg(long)]
        force: bool,
    },
    /// Import a key (nsec, hex or ncryptsec) from stdin, or the argument.
    ///
    /// An ncryptsec stays encrypted on disk; its passphrase is asked for, or
    /// read from $JOBCTL_KEY_PASSPHRASE.
    Import {
        /// The key; `-` or absent reads stdin (keeps it out of argv and history).
        key: Option<String>,
        /// Replace an existing key file (the old key is lost).
        #[arg(long)]
        force: bool,
    },
    /// Print the npub and hex public key (never the secret).
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Ctx, cmd: KeyCommand) -> Result<i32> {
    let path = ctx.settings.key_file()?;
    match cmd {
        KeyCommand::Generate { force } => {
            let keys = keys::generate(&path, force)?;
            ctx.say(format!("wrote a new key to {} (mode 0600)", path.display()));
            ctx.print(&npub(&keys.public_key()))?;
        }
        KeyCommand::Import { key, force } => {
            let text = match key.as_deref() {
                None | Some("-") => {
                    if std::io::stdin().is_terminal() {
                        rpassword::prompt_password("secret key (nsec, hex or ncryptsec): ")
                            .map_err(|e| Error::io("cannot read the key", e))?
                    } else {
                        read_stdin("the key")?
                    }
                }
                Some(k) => k.to_string(),
            };
            let keys = keys::import(&path, &text, force, ctx.settings.passphrase_prompt())?;
            ctx.say(format!(
                "imported the key into {} (mode 0600)",
                path.display()
            ));
            ctx.print(&npub(&keys.public_key()))?;
        }
        KeyCommand::Show { json } => {
            let key = ctx.settings.signing_key()?;
            let pk = key.keys.public_key();
            if json {
                let v = serde_json::json!({
                    "npub": npub(&pk),
                    "hex": pk.to_hex(),
                    "source": key.source.to_string(),
                });
                ctx.print(&v.to_string())?;
            } else {
                ctx.say(format!("key from {}", key.source));
                ctx.print(&format!("{}\n{}", npub(&pk), pk.to_hex()))?;
            }
        }
    }
    Ok(exit::OK)
}

/// The terminal prompt for an ncryptsec key's passphrase (the library
/// asks through [`jobctl::settings::Settings::with_passphrase_prompt`]).
pub(crate) fn ask_passphrase() -> std::io::Result<String> {
    rpassword::prompt_password("passphrase for the ncryptsec key: ")
}
