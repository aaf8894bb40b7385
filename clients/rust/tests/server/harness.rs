//! Starts `pez` as tests/api/helpers.rs does (a clean environment, its own
//! data directory, port 0, the address read from its log) and talks to its
//! admin API.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The admin token every test server gets.
pub const ADMIN: &str = "client-test-admin-token";

/// The `pez` binary: `PEZ_BIN`, or the workspace's debug build.
pub fn pez_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("PEZ_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let bin = target.join("debug/pez");
    assert!(
        bin.exists(),
        "{} is missing: build the server first (cargo build -p pez), or set PEZ_BIN",
        bin.display()
    );
    bin
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(what: &str) -> Self {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pez-client-{what}-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `pez` server process, killed when dropped.
pub struct Pez {
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
    _dir: TempDir,
}

impl Pez {
    /// A server on its own embedded store, with the admin token and `env`.
    pub fn start(env: &[(&str, &str)]) -> Self {
        Self::start_on(None, env)
    }

    /// A server on the PostgreSQL database at `database_url`, or on its
    /// own embedded store.
    pub fn start_on(database_url: Option<&str>, env: &[(&str, &str)]) -> Self {
        let dir = TempDir::new("data");
        let mut command = Command::new(pez_binary());
        for (key, _) in std::env::vars() {
            if key.starts_with("PEZ_") {
                command.env_remove(key);
            }
        }
        command
            .current_dir(dir.path())
            .env("PEZ_DATA_DIR", dir.path())
            .env("PEZ_LOG", "info")
            .env("PEZ_ENV_FILE", "")
            .env("PEZ_LISTEN", "127.0.0.1:0")
            .env("PEZ_ADMIN_TOKEN", ADMIN)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(url) = database_url {
            command.env("PEZ_DATABASE_URL", url);
        }
        let mut child = command.spawn().expect("spawn pez");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&log);
        let (found, addr) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let listening = line.split("listening on http://").nth(1).map(|at| {
                    at.split(|c: char| c == '"' || c.is_whitespace())
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                });
                lines.lock().expect("log").push(line);
                if let Some(at) = listening {
                    let _ = found.send(at);
                }
            }
        });
        let Ok(addr) = addr.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            panic!("pez did not start: {:?}", log.lock().expect("log"));
        };
        Pez {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A crash: SIGKILL, and waits for it to be gone.
    pub fn kill_9(&mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }

    /// What it logged.
    #[allow(dead_code)]
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    /// Creates sequence `name` with the admin API (PUT, `settings` as its
    /// JSON body); panics unless 201.
    pub fn create_sequence(&self, name: &str, settings: &str) {
        let agent = agent();
        let mut response = agent
            .put(format!("{}/v2/sequences/{name}", self.url()))
            .header("Authorization", &format!("Bearer {ADMIN}"))
            .send(settings)
            .expect("PUT sequence");
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        assert_eq!(status, 201, "create {name}: {body}");
    }
}

impl Drop for Pez {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

/// A base URL where nothing listens (a port just freed).
pub fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

/// Asserts no number appears twice.
pub fn assert_unique(numbers: &[i64]) {
    let mut sorted = numbers.to_vec();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        panic!("{} handed out twice (of {} numbers)", w[0], numbers.len());
    }
}

/// Asserts each number is above the one before.
pub fn assert_increasing(numbers: &[i64], what: &str) {
    if let Some((i, w)) = numbers.windows(2).enumerate().find(|(_, w)| w[0] >= w[1]) {
        panic!("{what}: {} came after {} (at {i})", w[1], w[0]);
    }
}
