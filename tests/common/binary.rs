//! Running the real binary: spawning, waiting until it is ready on free loopback ports, waiting
//! for it to exit, and its CPU time.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_image-config-webhook");

/// Runs the binary with `args` to completion and returns its stdout; fails the test, with its
/// stderr, when it exits non-zero.
pub fn run_ok(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{BIN}: {e}"));
    assert!(
        out.status.success(),
        "image-config-webhook {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A child process, killed and reaped on drop.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Starts the binary with `args`, its stderr to the file `stderr`.
pub fn spawn_binary(args: &[&str], stderr: &Path) -> ChildGuard {
    let log = std::fs::File::create(stderr).expect("stderr file");
    let child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("the binary starts");
    ChildGuard(child)
}

/// Two ports free right now (both bound at once so they differ).
pub fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let b = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

/// Polls until the child exits or `limit` passes.
pub fn wait_exit_blocking(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The status code of `GET path` over plain HTTP, within a second; `None` on any failure.
pub fn plain_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Runs `serve --cert-dir DIR` on free loopback ports with a probe listener (and `--log-level
/// warn` unless `extra` sets a level), plus `extra`, until
/// `/readyz` answers 200; returns the child, the HTTPS address and the probe address. Tries other
/// ports when someone took them between the check and the bind.
pub async fn start_binary(
    cert_dir: &Path,
    stderr: &Path,
    extra: &[&str],
) -> (ChildGuard, SocketAddr, SocketAddr) {
    let cert_dir = cert_dir.to_str().unwrap().to_owned();
    for _ in 0..3 {
        let (port, probe_port) = free_ports();
        let listen = format!("127.0.0.1:{port}");
        let probe = format!("127.0.0.1:{probe_port}");
        let mut args = vec![
            "serve",
            "--cert-dir",
            &cert_dir,
            "--listen",
            &listen,
            "--probe-addr",
            &probe,
        ];
        if !extra.contains(&"--log-level") {
            args.extend(["--log-level", "warn"]);
        }
        args.extend_from_slice(extra);
        let mut child = spawn_binary(&args, stderr);
        let probe: SocketAddr = probe.parse().unwrap();
        let begun = Instant::now();
        let ready = loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                break Err(status);
            }
            let status = tokio::task::spawn_blocking(move || plain_status(probe, "/readyz"))
                .await
                .ok()
                .flatten();
            if status == Some(200) {
                break Ok(());
            }
            assert!(
                begun.elapsed() < Duration::from_secs(10),
                "the binary was not ready within 10 s; stderr:\n{}",
                std::fs::read_to_string(stderr).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let log = std::fs::read_to_string(stderr).unwrap_or_default();
        match ready {
            Ok(()) => return (child, listen.parse().unwrap(), probe),
            Err(status) if log.contains("cannot listen") => {
                println!("note: port taken ({status}): {log}");
            }
            Err(status) => panic!("the binary exited early with {status}; stderr:\n{log}"),
        }
    }
    panic!("the binary did not start on a free port in three tries");
}

/// CPU time (user + system) of a process so far, from `/proc/PID/stat`, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // The command name (field 2) may hold spaces; the fields after its closing ')' are plain.
    let rest = &stat[stat.rfind(')').expect("stat has a command name") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / clock_ticks_per_second()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The peak resident set (VmHWM) of a process, KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(&pid.to_string(), "VmHWM")
}

/// A `kB` field of `/proc/PROCESS/status` (`PROCESS`: a pid, or `self`), KiB; 0 if unreadable.
pub fn status_kib(process: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs `serve` on `cert_dir` (on 127.0.0.1:0, its stderr in `dir`), expecting it to fail at
/// start; returns the exit code, the stderr lines starting with `error:`, and all of stderr.
pub fn failed_start(dir: &Path, cert_dir: &Path) -> (Option<i32>, Vec<String>, String) {
    let stderr = dir.join("stderr.log");
    let mut child = spawn_binary(
        &[
            "serve",
            "--cert-dir",
            cert_dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &stderr,
    );
    let begun = Instant::now();
    let status = wait_exit_blocking(&mut child.0, Duration::from_secs(10));
    println!("exited after {:?}", begun.elapsed());
    let log = std::fs::read_to_string(&stderr).unwrap_or_default();
    let errors = log
        .lines()
        .filter(|l| l.starts_with("error:"))
        .map(str::to_owned)
        .collect();
    (status.and_then(|s| s.code()), errors, log)
}

/// What one run of the binary produced.
pub struct Run {
    /// The arguments it was given.
    pub args: Vec<String>,
    /// Its exit code.
    pub code: i32,
    /// Its standard output (UTF-8).
    pub stdout: String,
    /// Its standard error (UTF-8).
    pub stderr: String,
}

impl Run {
    /// Fails the test, with both outputs, unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code of {:?}\nstdout:\n{}\nstderr:\n{}",
            self.args, self.stdout, self.stderr
        );
        self
    }
}

/// Runs the binary with `args` from the crate root, `stdin` on its standard input (none when
/// `None`), to completion. Fails the test when it is killed by a signal or writes anything but
/// UTF-8.
pub fn run_binary(args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("a stdin pipe");
        pipe.write_all(text.as_bytes()).expect("stdin is written");
    }
    let out = child.wait_with_output().expect("the binary finishes");
    Run {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        code: out.status.code().expect("the binary exits (no signal)"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}
