//! PostgreSQL and Redis servers of a test's own, for tests that stop and restart them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, unique};

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Runs a command as the `postgres` OS user when we are root (PostgreSQL refuses root).
fn as_postgres(program: &PathBuf) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn pg_bin(name: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("PULSE_PG_BIN") {
        return PathBuf::from(dir).join(name);
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin").join(name))
                .collect()
        })
        .unwrap_or_default();
    candidates.sort();
    candidates
        .into_iter()
        .rev()
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// A fresh directory under the system's temporary one, removed with all it holds when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(prefix: &str) -> ScratchDir {
        let dir = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }
}

impl std::ops::Deref for ScratchDir {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A private PostgreSQL server for tests that restart it.
pub struct PrivatePostgres {
    pub port: u16,
    /// Dropped after the server is stopped, as fields are dropped after `drop`.
    dir: ScratchDir,
}

impl PrivatePostgres {
    /// initdb and start a server on a free port.
    pub fn start() -> PrivatePostgres {
        let port = free_port();
        let dir = ScratchDir::new("pulse-pg");
        if is_root() {
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&*dir)
                .status()
                .unwrap();
        }
        let status = as_postgres(&pg_bin("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(dir.join("data"))
            .stdout(Stdio::null())
            .status()
            .expect("initdb (set PULSE_PG_BIN to the PostgreSQL bin directory)");
        assert!(status.success(), "initdb failed");
        let pg = PrivatePostgres { port, dir };
        pg.start_server();
        pg
    }

    fn start_server(&self) {
        let status = as_postgres(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("log"))
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                self.port,
                self.dir.display()
            ))
            .args(["-w", "start"])
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl start");
        assert!(status.success(), "postgres did not start");
    }

    /// Stops the server (fast shutdown: clients are disconnected).
    pub fn stop(&self) {
        let _ = as_postgres(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .status();
    }

    /// Starts the server again after [`PrivatePostgres::stop`].
    pub fn start_again(&self) {
        self.start_server();
    }

    /// Stops then starts the server on the same port and data.
    pub fn restart(&self) {
        self.restart_after(Duration::ZERO);
    }

    /// Stops the server, leaves it down for `down`, then starts it on the same port and data.
    pub fn restart_after(&self, down: Duration) {
        self.stop();
        std::thread::sleep(down);
        self.start_server();
    }

    /// URL of the `postgres` database on this server.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A private Redis server (append-only, so a restart keeps the stream) for tests that
/// restart it.
pub struct PrivateRedis {
    pub port: u16,
    /// Dropped after the server is stopped, as fields are dropped after `drop`.
    dir: ScratchDir,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts redis-server on a free port.
    pub fn start() -> PrivateRedis {
        let port = free_port();
        let dir = ScratchDir::new("pulse-redis");
        let mut r = PrivateRedis {
            port,
            dir,
            child: None,
        };
        r.start_server();
        r
    }

    fn start_server(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(&*self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Shuts Redis down (it rewrites nothing; the AOF already holds every write) and starts
    /// it again on the same port and data.
    pub fn restart(&mut self) {
        self.restart_after(Duration::ZERO);
    }

    /// Shuts Redis down, leaves it down for `down`, then starts it on the same port and data.
    pub fn restart_after(&mut self, down: Duration) {
        self.stop();
        std::thread::sleep(down);
        self.start_server();
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let _ = child.wait();
        }
    }

    /// URL of this server.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
