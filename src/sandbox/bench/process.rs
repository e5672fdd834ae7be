//! The controller as a child process: started with the bench's own executable, killed when the
//! guard goes away (also on an error or Ctrl-C), and measured through `/proc/<pid>`.

use std::path::Path;
use std::process::Stdio;

use tokio::process::{Child, Command};

/// Clock ticks per second in `/proc/<pid>/stat`: Linux reports CPU times in `USER_HZ`, which
/// is 100 on every architecture Linux exposes to user space.
pub const USER_HZ: f64 = 100.0;

/// Memory figures from `/proc/<pid>/status`, bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss: u64,
    /// `VmHWM`: the peak resident set so far.
    pub peak_rss: u64,
}

/// Parses `VmRSS` and `VmHWM` (in kB) out of a `/proc/<pid>/status` text.
pub fn parse_status(text: &str) -> Option<Memory> {
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line
            .get(name.len()..)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        Some(kb * 1024)
    };
    Some(Memory {
        rss: field("VmRSS:")?,
        peak_rss: field("VmHWM:")?,
    })
}

/// User + system CPU seconds out of a `/proc/<pid>/stat` line (fields 14 and 15). The command
/// name (field 2) may hold spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    let after = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name come field 3 (state) onwards: utime is field 14, i.e. index 11 here.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// This process's CPU seconds so far.
pub fn own_cpu_seconds() -> Option<f64> {
    parse_cpu_seconds(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// This process's memory now.
pub fn own_memory() -> Option<Memory> {
    parse_status(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// A running controller process; dropping it kills the process.
pub struct ControllerProcess {
    child: Child,
    pid: u32,
}

impl ControllerProcess {
    /// Starts `<this executable> --kubeconfig <kubeconfig> controller <args…>`, its output going
    /// to `log` (so a failure can be shown).
    pub fn start(kubeconfig: &Path, args: &[String], log: &Path) -> std::io::Result<Self> {
        let exe = std::env::current_exe()?;
        let out = std::fs::File::create(log)?;
        let err = out.try_clone()?;
        let child = Command::new(exe)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("controller")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| std::io::Error::other("the controller exited at once"))?;
        Ok(ControllerProcess { child, pid })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `Some(exit status)` once it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Its memory now, from `/proc`.
    pub fn memory(&self) -> Option<Memory> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        parse_status(&text)
    }

    /// Its CPU seconds so far, from `/proc`.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let text = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        parse_cpu_seconds(&text)
    }

    /// Kills it and waits for it to go.
    pub async fn stop(mut self) {
        // Already gone is fine: there is nothing left to stop.
        let _ = self.child.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_memory_in_bytes() {
        let text = "Name:\tdavy\nVmPeak:\t 900 kB\nVmHWM:\t   2048 kB\nVmRSS:\t   1024 kB\n";
        assert_eq!(
            parse_status(text),
            Some(Memory {
                rss: 1024 * 1024,
                peak_rss: 2048 * 1024
            })
        );
        assert_eq!(parse_status("Name:\tdavy\n"), None);
    }

    #[test]
    fn cpu_seconds_skip_a_name_with_spaces() {
        let stat = "4242 (davy (x) y) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 8 0 100";
        assert_eq!(parse_cpu_seconds(stat), Some(3.0));
        assert_eq!(parse_cpu_seconds("garbage"), None);
    }

    #[test]
    fn reads_its_own_process() {
        let me = std::process::id();
        let status = std::fs::read_to_string(format!("/proc/{me}/status")).unwrap();
        let memory = parse_status(&status).unwrap();
        assert!(memory.rss > 0 && memory.peak_rss >= memory.rss);
        let stat = std::fs::read_to_string(format!("/proc/{me}/stat")).unwrap();
        assert!(parse_cpu_seconds(&stat).unwrap() >= 0.0);
    }
}
