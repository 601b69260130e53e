//! Running the real `medgrid` binary, and driving headless Chromium through WebDriver.

#![allow(dead_code)] // each test binary uses a different part
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::zombie_processes)] // test code; children are reaped in Drop

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const PASSWORD: &str = "demo-password-123";
/// A small synthetic city: the bulk load runs in the real binary, and quickly.
pub const DEMO_RESIDENTS: &str = "300";

pub fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_medgrid"))
}

/// A fresh SQLite URL in a temporary folder.
pub fn sqlite_url(tag: &str) -> String {
    let dir = std::env::temp_dir().join(format!(
        "medgrid-e2e-{tag}-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    format!("sqlite://{}/medgrid.db", dir.display())
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A fresh PostgreSQL database (dropped by [`drop_pg`]).
pub fn pg_database(tag: &str) -> (String, String) {
    let admin = std::env::var("MEDGRID_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("medgrid_e2e_{tag}_{}", std::process::id());
    let psql = |sql: &str| {
        let out = Command::new("psql")
            .arg(&admin)
            .arg("-qc")
            .arg(sql)
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    psql(&format!("CREATE DATABASE {name}"));
    let base = admin.rsplit_once('/').unwrap().0.to_owned();
    (format!("{base}/{name}"), name)
}

pub fn drop_pg(name: &str) {
    let admin = std::env::var("MEDGRID_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let _ = Command::new("psql")
        .arg(&admin)
        .arg("-qc")
        .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .output();
}

/// A running `medgrid demo`, stopped with SIGTERM when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    pub stdout: Vec<String>,
}

impl Server {
    /// Starts `medgrid demo` on a free port and waits until it says where it listens.
    pub fn demo(database_url: &str) -> Server {
        let mut child = binary()
            .args([
                "demo",
                "--addr",
                "127.0.0.1:0",
                "--residents",
                DEMO_RESIDENTS,
                "--database-url",
                database_url,
                "--admin-password",
                PASSWORD,
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start medgrid");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("medgrid did not start; output: {lines:?}"));
            if let Some(rest) = line.strip_prefix("medgrid listening on ") {
                let base = rest.trim_end_matches('/').to_owned();
                lines.push(line);
                return Server {
                    child,
                    base,
                    stdout: lines,
                };
            }
            lines.push(line);
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM and returns the exit status (graceful shutdown).
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "medgrid did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Server {
    /// Sends SIGKILL — no graceful shutdown, no chance to finish or flush anything — and
    /// returns the exit status once the process is reaped. Restart with [`Server::demo`] on
    /// the same database URL.
    pub fn kill(mut self) -> std::process::ExitStatus {
        self.child.kill().expect("SIGKILL medgrid");
        self.child.wait().expect("reap medgrid")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it returns `Some`, failing with `what` after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A ChromeDriver process and one headless Chromium session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
}

fn call(method: &str, url: &str, body: Option<Value>) -> Value {
    let req = ureq::request(method, url);
    let resp = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    let resp = match resp {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("WebDriver {method} {url}: {e}"),
    };
    resp.into_json::<Value>().unwrap_or(Value::Null)
}

impl Browser {
    pub fn start() -> Browser {
        let driver_path =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chrome = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            std::path::Path::new(&driver_path).exists() && std::path::Path::new(&chrome).exists(),
            "the browser journey needs Chromium and ChromeDriver (apt-get install chromium chromium-driver)"
        );
        let port = free_port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        wait_for("chromedriver", Duration::from_secs(30), || {
            ureq::get(&format!("{base}/status")).call().ok().map(|_| ())
        });
        let profile = std::env::temp_dir().join(format!(
            "medgrid-chrome-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chrome,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                         "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
                         "--window-size=1280,900", format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let created = call("POST", &format!("{base}/session"), Some(caps));
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        Browser {
            driver,
            base,
            session,
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        call(
            method,
            &format!("{}/session/{}{path}", self.base, self.session),
            body,
        )["value"]
            .clone()
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({"url": url})));
    }

    pub fn current_url(&self) -> String {
        self.cmd("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The element matching `css`, waiting for it to appear.
    pub fn find(&self, css: &str) -> String {
        wait_for(&format!("element {css}"), Duration::from_secs(15), || {
            let v = self.cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            );
            v.as_object()
                .and_then(|o| o.values().next())
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    }

    pub fn find_all(&self, css: &str) -> Vec<String> {
        self.cmd(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| o.as_object()?.values().next()?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
    }

    pub fn text(&self, element: &str) -> String {
        self.cmd("GET", &format!("/element/{element}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn attribute(&self, element: &str, name: &str) -> String {
        self.cmd("GET", &format!("/element/{element}/attribute/{name}"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// A DOM property (a textarea's `value`, as typed), where `attribute` gives the markup's.
    pub fn property(&self, element: &str, name: &str) -> String {
        self.cmd("GET", &format!("/element/{element}/property/{name}"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn click(&self, element: &str) {
        self.cmd(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    pub fn type_into(&self, element: &str, text: &str) {
        self.cmd(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        );
    }

    pub fn page_source(&self) -> String {
        self.cmd("GET", "/source", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the page body contains `needle`.
    pub fn wait_text(&self, needle: &str) {
        wait_for(&format!("text {needle}"), Duration::from_secs(15), || {
            let body = self.find("body");
            self.text(&body).contains(needle).then_some(())
        });
    }

    pub fn screenshot(&self, path: &std::path::Path) {
        use std::io::Write;
        let b64 = self.cmd("GET", "/screenshot", None);
        if let Some(data) = b64.as_str() {
            if let Ok(bytes) = decode_base64(data) {
                if let Ok(mut f) = std::fs::File::create(path) {
                    let _ = f.write_all(&bytes);
                }
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session)).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn decode_base64(s: &str) -> Result<Vec<u8>, ()> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| *c != b'=' && !c.is_ascii_whitespace()) {
        let v = ALPHABET.iter().position(|a| *a == c).ok_or(())? as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Ok(out)
}
