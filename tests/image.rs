//! The container image's binary, checked without a container runtime: `scripts/image` builds
//! a static `davy` (a debug build, in its own target dir under this build's), which has no
//! program interpreter and needs no shared library (read from its ELF headers, and by `ldd`
//! where present), and runs in an empty root holding only the binary, the CA bundle, a
//! kubeconfig, /dev/random and /dev/urandom: `davy version`, and `davy controller` reconciling the seed's Rollout
//! (`examples/rollouts-demo.yaml`) to Healthy on a `davy sandbox` over loopback. Where podman,
//! buildah or docker can build, the `Dockerfile` is built too; otherwise a notice says why not.
//!
//! The static build is the expensive part (every crate once more, a few minutes on two cores
//! the first time; nothing when unchanged), so it is done once per test binary.

// Test code: a failed unwrap is a failed test, and helpers need no API docs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "common/davy_process.rs"]
mod davy_process;

#[path = "controller_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use davy::api::Rollout;
use davy_process::{Process, client_for, start_sandbox};
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use support::{describe, eventually, read_docs};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// This build's target dir: the test binary's `davy` is `<target>/<profile>/davy`.
fn target_dir() -> PathBuf {
    let davy = PathBuf::from(env!("CARGO_BIN_EXE_davy"));
    davy.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The static binary, built once by `scripts/image --debug`.
fn static_davy() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let started = std::time::Instant::now();
        let out = Command::new(root().join("scripts/image"))
            .arg("--debug")
            .env("CARGO_TARGET_DIR", target_dir())
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/image");
        assert!(out.status.success(), "scripts/image --debug failed");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let path = PathBuf::from(stdout.lines().last().expect("the binary's path").trim());
        println!(
            "scripts/image --debug: {} in {:.0?}",
            path.display(),
            started.elapsed()
        );
        assert!(path.is_file(), "{}", path.display());
        path
    })
}

/// Program header types and the dynamic tag this check reads (ELF spec).
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap())
}
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}
fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// (has a program interpreter, number of DT_NEEDED entries) of a little-endian ELF64 file.
fn dynamic_dependencies(bytes: &[u8]) -> (bool, usize) {
    assert_eq!(&bytes[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(bytes[4], 2, "not ELF64");
    assert_eq!(bytes[5], 1, "not little-endian");
    let phoff = u64_at(bytes, 0x20) as usize;
    let phentsize = u16_at(bytes, 0x36) as usize;
    let phnum = u16_at(bytes, 0x38) as usize;
    let mut interp = false;
    let mut needed = 0;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        match u32_at(bytes, ph) {
            PT_INTERP => interp = true,
            PT_DYNAMIC => {
                let offset = u64_at(bytes, ph + 8) as usize;
                let size = u64_at(bytes, ph + 32) as usize;
                for entry in (offset..offset + size).step_by(16) {
                    match u64_at(bytes, entry) {
                        DT_NULL => break,
                        DT_NEEDED => needed += 1,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    (interp, needed)
}

#[test]
fn the_elf_check_sees_a_dynamic_executable() {
    // The normal build links glibc dynamically: the check must say so, or it proves nothing.
    let bytes = std::fs::read(env!("CARGO_BIN_EXE_davy")).unwrap();
    let (interp, needed) = dynamic_dependencies(&bytes);
    assert!(interp && needed > 0, "interp {interp}, needed {needed}");
}

#[test]
fn the_image_binary_is_static() {
    let bytes = std::fs::read(static_davy()).unwrap();
    assert_eq!(dynamic_dependencies(&bytes), (false, 0));
    if Path::new("/usr/bin/ldd").exists() {
        let out = Command::new("/usr/bin/ldd")
            .arg(static_davy())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("not a dynamic executable") || text.contains("statically linked"),
            "ldd: {text}"
        );
    }
}

/// `name` on this process's PATH (the commands below clear the child's environment, so the
/// program must be found first).
fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A directory holding only the static binary, the CA bundle and whatever `extra` adds, and
/// a way to run commands with it as `/`; `None` (with a notice) where no chroot is possible.
struct EmptyRoot {
    dir: tempfile::TempDir,
    /// `[chroot]` as root, else `[unshare, -r, chroot]` (a user namespace), absolute paths.
    prefix: Vec<String>,
}

impl EmptyRoot {
    fn new() -> Option<EmptyRoot> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(static_davy(), dir.path().join("davy")).unwrap();
        let certs = dir.path().join("etc/ssl/certs");
        std::fs::create_dir_all(&certs).unwrap();
        let bundle = Path::new("/etc/ssl/certs/ca-certificates.crt");
        if bundle.exists() {
            std::fs::copy(bundle, certs.join("ca-certificates.crt")).unwrap();
        }
        let (Some(chroot), unshare) = (which("chroot"), which("unshare")) else {
            println!("NOTICE: no chroot here; empty-root runs skipped");
            return None;
        };
        let chroot = chroot.display().to_string();
        let mut prefixes = vec![vec![chroot.clone()]];
        if let Some(unshare) = unshare {
            prefixes.push(vec![unshare.display().to_string(), "-r".into(), chroot]);
        }
        for prefix in prefixes {
            let probe = Command::new(&prefix[0])
                .args(&prefix[1..])
                .arg(dir.path())
                .args(["/davy", "--help"])
                .env_clear()
                .output();
            if probe.is_ok_and(|out| out.status.success()) {
                return Some(EmptyRoot { dir, prefix });
            }
        }
        println!(
            "NOTICE: neither chroot nor unshare -r chroot works here; empty-root runs skipped"
        );
        None
    }

    /// `args` run with the root as `/`, with an empty environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.prefix[0]);
        command
            .args(&self.prefix[1..])
            .arg(self.dir.path())
            .args(args)
            .env_clear()
            .env("HOME", "/");
        command
    }
}

#[test]
fn the_static_binary_prints_its_version_in_an_empty_root() {
    let Some(root) = EmptyRoot::new() else {
        return;
    };
    let entries: Vec<String> = std::fs::read_dir(root.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries.len(), 2, "only davy and etc/: {entries:?}");
    let out = root.command(&["/davy", "version"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(env!("CARGO_PKG_VERSION")), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_static_controller_reconciles_the_seeds_rollout_from_an_empty_root() {
    let Some(root) = tokio::task::spawn_blocking(EmptyRoot::new).await.unwrap() else {
        return;
    };
    // A container runtime gives every container /dev; the static binary needs /dev/random and
    // /dev/urandom from it (getrandom cannot find glibc's getrandom() in a static build and
    // falls back to the devices). As a container would, the root gets those nodes.
    std::fs::create_dir_all(root.dir.path().join("dev")).unwrap();
    // getrandom's fallback polls /dev/random before it reads /dev/urandom: both nodes.
    let made = [("random", "8"), ("urandom", "9")]
        .iter()
        .all(|(name, minor)| {
            Command::new("mknod")
                .args(["-m", "666"])
                .arg(root.dir.path().join("dev").join(name))
                .args(["c", "1", minor])
                .status()
                .is_ok_and(|s| s.success())
        });
    if !made {
        println!(
            "NOTICE: cannot create /dev/random and /dev/urandom in the empty root (not root); controller run skipped"
        );
        return;
    }
    // The sandbox (the normal binary) writes its kubeconfig into the root.
    let kubeconfig = root.dir.path().join("kubeconfig");
    let _sandbox = start_sandbox(&kubeconfig);

    let log_path = root.dir.path().join("controller.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics = format!("127.0.0.1:{port}");
    let controller = root
        .command(&[
            "/davy",
            "controller",
            "--kubeconfig",
            "/kubeconfig",
            "--metrics-addr",
            &metrics,
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the static controller");
    let _controller = Process(controller);

    let client = client_for(&kubeconfig).await;
    let namespace = client.default_namespace().to_string();
    for mut doc in read_docs("examples/rollouts-demo.yaml") {
        doc["metadata"]["namespace"] = json!(namespace);
        match doc["kind"].as_str().unwrap() {
            "Rollout" => {
                let rollout: Rollout = serde_json::from_value(doc).unwrap();
                Api::<Rollout>::namespaced(client.clone(), &namespace)
                    .create(&PostParams::default(), &rollout)
                    .await
                    .unwrap();
            }
            "Service" => {
                let service: Service = serde_json::from_value(doc).unwrap();
                Api::<Service>::namespaced(client.clone(), &namespace)
                    .create(&PostParams::default(), &service)
                    .await
                    .unwrap();
            }
            other => panic!("unexpected {other}"),
        }
    }
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &namespace);
    eventually("the seed's Rollout to become Healthy", || async {
        let status = serde_json::to_value(
            &rollouts
                .get("rollouts-demo")
                .await
                .map_err(|e| e.to_string())?
                .status,
        )
        .unwrap();
        if status["phase"] == "Healthy" && status["availableReplicas"] == 2 {
            Ok(())
        } else {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            Err(format!("{}\ncontroller log:\n{log}", describe(&status)))
        }
    })
    .await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("davy controller starting"), "{log}");
}

/// The first container runtime that answers `info` (podman, buildah, docker).
fn container_runtime() -> Option<(&'static str, &'static [&'static str])> {
    let candidates: [(&str, &[&str], &[&str]); 3] = [
        ("podman", &["info"], &["build", "-t"]),
        ("buildah", &["info"], &["bud", "-t"]),
        ("docker", &["info"], &["build", "-t"]),
    ];
    for (tool, probe, build) in candidates {
        let works = Command::new(tool)
            .args(probe)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if works {
            return Some((tool, build));
        }
    }
    None
}

#[test]
fn the_dockerfile_builds_where_a_container_runtime_works() {
    let Some((tool, build)) = container_runtime() else {
        println!(
            "NOTICE: no working podman, buildah or docker here; the Dockerfile was not built \
             (the static binary it ships is checked by the other tests of this file)"
        );
        return;
    };
    let tag = "localhost/davy-test:latest";
    let status = Command::new(tool)
        .args(build)
        .arg(tag)
        .arg(root())
        .status()
        .unwrap();
    assert!(status.success(), "{tool} build failed");
    let out = Command::new(tool)
        .args(["run", "--rm", "--entrypoint", "davy", tag, "version"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
