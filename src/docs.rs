//! `tandem generate-docs --out DIR` (hidden): the man pages and shell completions, made
//! from the same clap definition as the commands themselves, so they cannot drift from
//! what `tandem --help` says. `appliance/package.sh` runs it and ships the result.
//!
//! ```text
//! DIR/man/tandem.1, DIR/man/tandem-run.1, ...       one page per visible subcommand
//! DIR/completions/tandem.bash, _tandem, tandem.fish
//! ```

use std::fs;
use std::path::Path;

use anyhow::Context;
use clap::Command;
use clap_complete::Shell;

/// Writes every page and completion script under `out` (created if missing).
pub fn generate(cli: Command, out: &Path) -> anyhow::Result<()> {
    let man = out.join("man");
    let completions = out.join("completions");
    for dir in [&man, &completions] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let version = cli.get_version().unwrap_or_default().to_owned();
    write_pages(&cli, cli.get_name().to_owned(), &version, &man)?;
    let bin = cli.get_name().to_owned();
    let visible = without_hidden(&cli);
    for (shell, file) in [
        (Shell::Bash, "tandem.bash"),
        (Shell::Zsh, "_tandem"),
        (Shell::Fish, "tandem.fish"),
    ] {
        let mut cmd = visible.clone();
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut cmd, &bin, &mut text);
        let path = completions.join(file);
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `cli` without its hidden subcommands (this one among them): the completion
/// generators would offer them otherwise.
fn without_hidden(cli: &Command) -> Command {
    let mut cmd = Command::new(cli.get_name().to_owned())
        .args(cli.get_arguments().cloned())
        .subcommands(cli.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if let Some(version) = cli.get_version() {
        cmd = cmd.version(version.to_owned());
    }
    if let Some(about) = cli.get_about() {
        cmd = cmd.about(about.clone());
    }
    cmd
}

/// `name.1` for `cmd`, then `name-SUB.1` for each visible subcommand, recursively (the
/// names `man` finds from the parent page's SUBCOMMANDS section).
fn write_pages(cmd: &Command, name: String, version: &str, dir: &Path) -> anyhow::Result<()> {
    // Subcommands carry no version of their own: the page footer shows the binary's
    // (without a `--version` flag the subcommand does not have). The synopsis shows the
    // command as typed: `tandem check`, not the page name `tandem-check`.
    let mut page_cmd = cmd.clone().name(name.clone()).version(version.to_owned());
    if name != cmd.get_name() {
        page_cmd = page_cmd
            .disable_version_flag(true)
            .bin_name(name.replace('-', " "));
    }
    let mut text = Vec::new();
    clap_mangen::Man::new(page_cmd)
        .render(&mut text)
        .with_context(|| format!("rendering the man page of {name}"))?;
    let path = dir.join(format!("{name}.1"));
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, format!("{name}-{}", sub.get_name()), version, dir)?;
    }
    Ok(())
}
