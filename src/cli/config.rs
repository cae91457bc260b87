//! `jobctl config`: show the config file's path, its effective values, or write a template.

use clap::Subcommand;
use jobctl::config;
use jobctl::error::{exit, Error, Result};
use jobctl::keys;

use super::Ctx;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write a commented config file.
    Init {
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the effective config (file + environment) as TOML.
    Show,
    /// Print the config file path.
    Path,
}

pub fn run(ctx: &Ctx, cmd: ConfigCommand) -> Result<i32> {
    match cmd {
        ConfigCommand::Path => {
            let (path, _) = ctx.settings.config_path.clone();
            ctx.print(&path.display().to_string())?;
        }
        ConfigCommand::Show => {
            let cfg = ctx.config()?;
            if !cfg.loaded {
                ctx.say(format!(
                    "# {} does not exist; showing defaults",
                    cfg.path.display()
                ));
            }
            ctx.print(cfg.to_toml().trim_end())?;
        }
        ConfigCommand::Init { force } => {
            let (path, _) = ctx.settings.config_path.clone();
            if path.exists() && !force {
                return Err(Error::Config {
                    path,
                    msg: "already exists; pass --force to overwrite it".into(),
                });
            }
            if let Some(dir) = path.parent() {
                keys::create_private_dir(dir)?;
            }
            std::fs::write(&path, config::TEMPLATE)
                .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
            ctx.say(format!("wrote {}", path.display()));
            ctx.print(&path.display().to_string())?;
        }
    }
    Ok(exit::OK)
}
