//! kubectl-plugin mode: the name the binary was invoked under (`kubectl-davy` ⇒ "kubectl davy"),
//! `davy install-plugin [DIR]` (a `kubectl-davy` symlink to this executable), `davy version`
//! and `davy completion SHELL`.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use serde::Serialize;

use super::actions::ObjectFormat;
use super::kube::CliError;

/// The plugin file name `install-plugin` creates; kubectl runs it for `kubectl davy ...`.
pub const PLUGIN_FILE: &str = "kubectl-davy";

/// How help, usage and completion name the program, from argv[0]'s file name: `kubectl-davy`
/// runs as the plugin "kubectl davy"; `kubectl-argo-rollouts` (a user who links Davy under the
/// upstream plugin's name to keep scripts unchanged) as "kubectl argo rollouts"; anything else
/// as "davy". Only the display changes: every verb behaves identically.
pub fn display_name(argv0: Option<&OsStr>) -> &'static str {
    let stem = argv0
        .map(Path::new)
        .and_then(Path::file_stem)
        .and_then(OsStr::to_str)
        .unwrap_or_default();
    match stem {
        "kubectl-davy" => "kubectl davy",
        "kubectl-argo-rollouts" => "kubectl argo rollouts",
        _ => "davy",
    }
}

/// Arguments of `install-plugin`.
#[derive(Debug, clap::Args)]
pub struct InstallPluginArgs {
    /// Directory for the `kubectl-davy` link (default: the directory of this executable, which
    /// is on PATH whenever `davy` is run by name).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// What `install-plugin` should do with the target path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkPlan {
    /// Nothing there: create the link.
    Create,
    /// A symlink is there (an older install): replace it.
    Replace,
    /// A regular file or directory is there: refuse.
    Refuse,
}

/// Decides from what is at the target path (`None`: nothing; `Some(true)`: a symlink).
pub fn link_plan(existing_is_symlink: Option<bool>) -> LinkPlan {
    match existing_is_symlink {
        None => LinkPlan::Create,
        Some(true) => LinkPlan::Replace,
        Some(false) => LinkPlan::Refuse,
    }
}

/// `install-plugin [DIR]`: links `DIR/kubectl-davy` to the running executable.
pub fn install(args: &InstallPluginArgs) -> anyhow::Result<i32> {
    let exe = std::env::current_exe()?;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => exe.parent().map(Path::to_path_buf).ok_or_else(|| {
            CliError::Usage("cannot tell the directory of this executable".into())
        })?,
    };
    let target = dir.join(PLUGIN_FILE);
    let existing = std::fs::symlink_metadata(&target)
        .ok()
        .map(|m| m.file_type().is_symlink());
    match link_plan(existing) {
        LinkPlan::Refuse => {
            return Err(CliError::Usage(format!(
                "{} exists and is not a symlink; not overwriting it",
                target.display()
            ))
            .into());
        }
        LinkPlan::Replace => std::fs::remove_file(&target)?,
        LinkPlan::Create => {}
    }
    symlink(&exe, &target)?;
    println!("{} -> {}", target.display(), exe.display());
    println!(
        "kubectl now runs Davy as `kubectl davy` when {} is on PATH",
        dir.display()
    );
    Ok(0)
}

#[cfg(unix)]
fn symlink(exe: &Path, target: &Path) -> anyhow::Result<()> {
    std::os::unix::fs::symlink(exe, target)?;
    Ok(())
}

#[cfg(not(unix))]
fn symlink(exe: &Path, target: &Path) -> anyhow::Result<()> {
    // Windows symlinks need a privilege most users lack; a copy works the same for kubectl.
    let target = target.with_extension("exe");
    std::fs::copy(exe, &target)?;
    Ok(())
}

/// Arguments of `version`.
#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// Print just the version line.
    #[arg(long)]
    pub short: bool,
    /// Print the version information as json or yaml.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<ObjectFormat>,
}

/// Build information, as upstream's `version` prints it (fields Davy can know).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// `v<crate version>`.
    pub version: String,
    /// `DAVY_GIT_COMMIT` at build time, else `unknown`.
    pub git_commit: String,
    /// Always `rustc`.
    pub compiler: String,
    /// `<os>/<arch>` in Go's spelling (`linux/amd64`).
    pub platform: String,
}

/// This build's information.
pub fn version_info() -> VersionInfo {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    VersionInfo {
        version: format!("v{}", env!("CARGO_PKG_VERSION")),
        git_commit: option_env!("DAVY_GIT_COMMIT")
            .unwrap_or("unknown")
            .to_string(),
        compiler: "rustc".to_string(),
        platform: format!("{}/{arch}", std::env::consts::OS),
    }
}

/// Upstream's layout: `<program>: <version>`, then indented `Key: value` lines unless `short`.
pub fn render_version(program: &str, info: &VersionInfo, short: bool) -> String {
    let mut out = format!("{program}: {}\n", info.version);
    if !short {
        out.push_str(&format!("  GitCommit: {}\n", info.git_commit));
        out.push_str(&format!("  Compiler: {}\n", info.compiler));
        out.push_str(&format!("  Platform: {}\n", info.platform));
    }
    out
}

/// `version [--short] [-o json|yaml]`.
pub fn version(args: &VersionArgs, program: &str) -> anyhow::Result<i32> {
    let info = version_info();
    let text = match args.output {
        Some(format) => super::actions::execute::render_object(&info, format)?,
        None => render_version(program_file(program), &info, args.short),
    };
    print!("{text}");
    Ok(0)
}

/// The file name a display name stands for (`kubectl davy` ⇒ `kubectl-davy`).
fn program_file(display: &str) -> &'static str {
    match display {
        "kubectl davy" => PLUGIN_FILE,
        "kubectl argo rollouts" => "kubectl-argo-rollouts",
        _ => "davy",
    }
}

/// Shells `completion` can write a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// Bash.
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
    /// PowerShell.
    Powershell,
}

/// Arguments of `completion`.
#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// `completion SHELL`: the script for the whole command tree `app`.
pub fn completion(
    args: &CompletionArgs,
    app: &mut clap::Command,
    program: &str,
) -> anyhow::Result<i32> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
        Shell::Powershell => clap_complete::Shell::PowerShell,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, app, program_file(program), &mut out);
    std::io::stdout().write_all(&out)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_name_follows_argv0() {
        assert_eq!(
            display_name(Some(OsStr::new("/usr/bin/kubectl-davy"))),
            "kubectl davy"
        );
        assert_eq!(
            display_name(Some(OsStr::new("kubectl-davy.exe"))),
            "kubectl davy"
        );
        assert_eq!(
            display_name(Some(OsStr::new("/x/kubectl-argo-rollouts"))),
            "kubectl argo rollouts"
        );
        assert_eq!(display_name(Some(OsStr::new("target/debug/davy"))), "davy");
        assert_eq!(display_name(None), "davy");
    }

    #[test]
    fn link_plan_never_overwrites_files() {
        assert_eq!(link_plan(None), LinkPlan::Create);
        assert_eq!(link_plan(Some(true)), LinkPlan::Replace);
        assert_eq!(link_plan(Some(false)), LinkPlan::Refuse);
    }

    #[test]
    fn version_layout() {
        let info = VersionInfo {
            version: "v1.2.3".into(),
            git_commit: "abc".into(),
            compiler: "rustc".into(),
            platform: "linux/amd64".into(),
        };
        assert_eq!(
            render_version("kubectl-davy", &info, false),
            "kubectl-davy: v1.2.3\n  GitCommit: abc\n  Compiler: rustc\n  Platform: linux/amd64\n"
        );
        assert_eq!(render_version("davy", &info, true), "davy: v1.2.3\n");
    }
}
