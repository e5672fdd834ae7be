//! kubectl-plugin mode with the real kubectl: `davy install-plugin DIR` links `kubectl-davy`,
//! kubectl finds it on PATH and `kubectl davy ...` behaves as `davy ...`; completion scripts;
//! and docs/cli.md documents every subcommand `davy --help` lists.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

const DAVY: &str = env!("CARGO_BIN_EXE_davy");

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn kubectl() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/kubectl");
    if path.exists() {
        Some(path)
    } else {
        println!(
            "NOTICE: kubectl not found (install kubectl); kubectl plugin discovery not checked"
        );
        None
    }
}

#[test]
fn install_plugin_links_and_kubectl_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(Command::new(DAVY).arg("install-plugin").arg(dir.path()));
    assert_eq!(code, 0, "{err}");
    let link = dir.path().join("kubectl-davy");
    assert!(out.starts_with(&format!("{} -> ", link.display())), "{out}");
    let target = std::fs::read_link(&link).unwrap();
    assert_eq!(
        target.canonicalize().unwrap(),
        Path::new(DAVY).canonicalize().unwrap()
    );
    // A second install replaces its own link.
    let (code, _, err) = run(Command::new(DAVY).arg("install-plugin").arg(dir.path()));
    assert_eq!(code, 0, "{err}");

    // Invoked under the plugin name, the program calls itself `kubectl davy`.
    let (code, out, _) = run(Command::new(&link).arg("--help"));
    assert_eq!(code, 0);
    assert!(
        out.contains("Usage: kubectl davy [OPTIONS] <COMMAND>"),
        "{out}"
    );

    let Some(kubectl) = kubectl() else { return };
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (code, out, err) = run(Command::new(&kubectl)
        .args(["davy", "version"])
        .env("PATH", &path)
        .env("HOME", dir.path()));
    assert_eq!(code, 0, "{err}");
    let version = env!("CARGO_PKG_VERSION");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("kubectl-davy: v{version}"), "{out}");
    assert_eq!(lines[1], "  GitCommit: unknown");
    assert_eq!(lines[2], "  Compiler: rustc");
    assert!(lines[3].starts_with("  Platform: "), "{out}");
    let (code, out, _) = run(Command::new(&kubectl)
        .args(["davy", "version", "--short"])
        .env("PATH", &path)
        .env("HOME", dir.path()));
    assert_eq!((code, out), (0, format!("kubectl-davy: v{version}\n")));
    let (_, out, _) = run(Command::new(&kubectl)
        .args(["plugin", "list"])
        .env("PATH", &path)
        .env("HOME", dir.path()));
    assert!(out.contains(&link.display().to_string()), "{out}");
}

#[test]
fn install_plugin_refuses_to_overwrite_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kubectl-davy");
    std::fs::write(&file, "not a link").unwrap();
    let (code, _, err) = run(Command::new(DAVY).arg("install-plugin").arg(dir.path()));
    assert_eq!(
        (code, err),
        (
            1,
            format!(
                "Error: {} exists and is not a symlink; not overwriting it\n",
                file.display()
            )
        )
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a link");
}

#[test]
fn version_formats_and_completion_scripts() {
    let (code, out, _) = run(Command::new(DAVY).args(["version", "-o", "json"]));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["version"],
        format!("v{}", env!("CARGO_PKG_VERSION")).as_str()
    );
    assert_eq!(v["compiler"], "rustc");
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let (code, out, err) = run(Command::new(DAVY).args(["completion", shell]));
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains("promote"), "{shell} script lacks the verbs");
    }
    let (_, out, _) = run(Command::new(DAVY).args(["completion", "bash"]));
    assert!(out.contains("_davy()"), "{out}");
}

/// The subcommand names of `davy --help` (the `Commands:` section), without `help`.
fn subcommands() -> Vec<String> {
    let (_, out, _) = run(Command::new(DAVY).arg("--help"));
    out.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|name| name != "help")
        .collect()
}

#[test]
fn docs_cli_md_lists_every_subcommand() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md")).unwrap();
    let names = subcommands();
    assert!(names.len() >= 20, "{names:?}");
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !docs.contains(&format!("## `davy {n}")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/cli.md has no `## `davy NAME` section for {missing:?}"
    );
    println!("docs/cli.md: {} subcommands documented", names.len());
}
