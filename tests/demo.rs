//! `davy demo` with the real binary: the whole story ends with exit 0 and every narrated state
//! in the output; a story cut short by `--timeout` exits 1 naming the state it never saw.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use davy::sandbox::demo::script::Beat;

/// Wall-clock bound of one run: the binary is killed after this.
const KILL_AFTER: Duration = Duration::from_secs(150);

/// Runs `davy demo <args>`, killing it after [`KILL_AFTER`]; returns (exit code, stdout+stderr).
fn run_demo(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_davy"))
        .arg("demo")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start davy demo");
    // Drain both pipes on threads so a full pipe never stalls the demo.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + KILL_AFTER;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = format!(
        "{}{}",
        out.join().expect("stdout thread"),
        err.join().expect("stderr thread")
    );
    (status.and_then(|s| s.code()), text)
}

#[test]
fn the_whole_story_is_observed() {
    let (code, output) = run_demo(&["--no-color"]);
    println!("{output}");
    assert_eq!(code, Some(0), "davy demo did not exit 0 (None = killed)");
    let missing: Vec<&str> = Beat::ALL
        .iter()
        .map(|beat| beat.title())
        .filter(|title| {
            !output
                .lines()
                .any(|line| line.contains(title) && line.starts_with('['))
        })
        .collect();
    assert!(missing.is_empty(), "narrated states missing: {missing:?}");
    for command in [
        "$ kubectl davy set image rollouts-demo rollouts-demo=argoproj/rollouts-demo:yellow",
        "$ kubectl davy promote rollouts-demo",
        "$ kubectl davy set image rollouts-demo rollouts-demo=argoproj/rollouts-demo:bad-yellow",
    ] {
        assert!(output.contains(command), "no {command:?}");
    }
    assert!(output.contains("demo complete: all 14 narrated states were observed through the API, no request found no ready backend"));
    // The traffic by cause: the bad release's own 5xx are counted, no request lacked a backend.
    let line = |prefix: &str| {
        output
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line"))
            .to_string()
    };
    assert!(
        line("no ready backend (caused by the rollout)").ends_with(" 0"),
        "{output}"
    );
    assert!(
        line("HTTP 5xx from the release's own pods").contains("(bad-yellow "),
        "{output}"
    );
    // --no-color: no escape codes at all (no colours, no screen clearing).
    assert!(
        !output.contains('\x1b'),
        "ANSI escapes in --no-color output"
    );
}

#[test]
fn a_story_cut_short_exits_1_naming_the_missing_state() {
    let (code, output) = run_demo(&["--no-color", "--timeout", "0s"]);
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("demo FAILED: never observed \"")
            && output.contains("\": timed out after 0s; last seen: "),
        "{output}"
    );
}

#[test]
fn the_blue_green_scene_is_observed() {
    use davy::sandbox::demo::bluegreen::Beat as BlueGreenBeat;
    let (code, output) = run_demo(&["--no-color", "--strategy", "blue-green"]);
    println!("{output}");
    assert_eq!(code, Some(0), "davy demo did not exit 0 (None = killed)");
    let missing: Vec<&str> = BlueGreenBeat::ALL
        .iter()
        .map(|beat| beat.title())
        .filter(|title| {
            !output
                .lines()
                .any(|line| line.contains(title) && line.starts_with('['))
        })
        .collect();
    assert!(missing.is_empty(), "narrated states missing: {missing:?}");
    for command in [
        "$ kubectl davy set image rollout-bluegreen rollouts-demo=argoproj/rollouts-demo:green",
        "$ kubectl davy promote rollout-bluegreen",
    ] {
        assert!(output.contains(command), "no {command:?}");
    }
    assert!(output.contains("demo complete: all 4 narrated states were observed through the API, no request found no ready backend"));
    assert!(
        !output.contains('\x1b'),
        "ANSI escapes in --no-color output"
    );
}
