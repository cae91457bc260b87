//! `jobctl completions SHELL`: a shell completion script on stdout.

use clap::{CommandFactory, ValueEnum};
use jobctl::error::{exit, Result};

use super::Cli;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

pub fn run(ctx: &super::Ctx, shell: Shell) -> Result<i32> {
    use clap_complete::Shell as S;
    let shell = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Elvish => S::Elvish,
        Shell::Powershell => S::PowerShell,
    };
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "jobctl", &mut *ctx.out());
    Ok(exit::OK)
}
