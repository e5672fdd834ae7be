//! Running a real server binary (Prometheus, Alertmanager) for integration tests: finding the
//! binary, a free loopback port, spawning it with its log in a temporary directory, polling its
//! readiness URL against a deadline, and killing it on drop.
//!
//! Each server's own flags, configuration and readiness path stay in its own module; this one
//! only holds the lifecycle they share.

use std::ffi::OsStr;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started server may take to answer its readiness URL.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// `$env_var` if set, else the first of `names` found as a file on the PATH.
pub fn find_binary(env_var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        return Some(PathBuf::from(path));
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A port free at the time of asking.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running server process on 127.0.0.1; killed (and its temporary directory removed) on drop.
pub struct ServerProcess {
    child: Child,
    dir: tempfile::TempDir,
    /// The log file's name inside `dir`.
    log_file: String,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl ServerProcess {
    /// Starts `binary` with the arguments `args(dir, port)` returns (its stderr going to
    /// `<name>.log` in `dir`) and waits until `GET <url><ready_path>` succeeds. `name` also
    /// names the server in panic messages.
    pub async fn start<A>(
        name: &str,
        binary: &Path,
        dir: tempfile::TempDir,
        ready_path: &str,
        args: impl Fn(&Path, u16) -> Vec<A>,
    ) -> ServerProcess
    where
        A: AsRef<OsStr>,
    {
        let log_file = format!("{name}.log");
        let client = reqwest::Client::new();
        // A port picked free can be taken before the server binds it: retry with another.
        for _attempt in 0..3 {
            let port = free_port();
            let log = std::fs::File::create(dir.path().join(&log_file)).unwrap();
            let mut child = Command::new(binary)
                .args(args(dir.path(), port))
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let addr = format!("127.0.0.1:{port}");
            let url = format!("http://{addr}");
            let deadline = Instant::now() + READY_TIMEOUT;
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited: most likely the port; try another
                }
                let ready = client
                    .get(format!("{url}{ready_path}"))
                    .timeout(Duration::from_secs(1))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ready {
                    return ServerProcess {
                        child,
                        dir,
                        log_file,
                        url,
                        addr,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{name} not ready after 30 s: {}", read_log(&dir, &log_file));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("{name} did not start: {}", read_log(&dir, &log_file));
    }

    /// The server's log so far (for assertion messages).
    pub fn log(&self) -> String {
        read_log(&self.dir, &self.log_file)
    }

    /// Stops the server now (for "server down" tests); drop does the same.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_log(dir: &tempfile::TempDir, file: &str) -> String {
    std::fs::read_to_string(dir.path().join(file)).unwrap_or_default()
}
