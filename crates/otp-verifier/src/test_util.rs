//! Test seams, not API (feature `test-util`): a real `redis-server` for tests and benchmarks.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` (the Debian package) of this test's own: a free loopback port, a temporary
/// directory, an append-only file written at every command (so a restart keeps what a
/// production Redis with AOF would keep); stopped when dropped. Starting fails loudly, with the reason,
/// when the binary is missing or the server does not answer: a test that needs Redis never
/// silently passes without one.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts one on a free port.
    pub fn start() -> Result<Self, String> {
        Self::start_with(&[])
    }

    /// Starts one with these extra `redis-server` arguments.
    pub fn start_with(extra: &[&str]) -> Result<Self, String> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            match Self::start_on(port, extra) {
                Ok(server) => return Ok(server),
                Err(error) => last = error,
            }
        }
        Err(last)
    }

    fn start_on(port: u16, extra: &[&str]) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("otp-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
        let extra = extra.iter().map(|a| (*a).to_owned()).collect();
        let mut server = Self { child: None, port, dir, extra };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("cannot start redis-server ({e}): install the Debian package redis-server (.ci/run does)")
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("redis-server exited at start ({status}) on port {}", self.port));
                }
            }
            if ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("redis-server on port {} did not answer PING within 10 s", self.port))
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many script calls (EVALSHA + EVAL) it has served, from `INFO commandstats`: every
    /// operation of the Redis store is one script call, so this counts its round trips.
    pub fn script_calls(&self) -> Result<u64, String> {
        self.calls(&["evalsha", "eval"])
    }

    /// How many of these commands (lower case, as `INFO commandstats` names them: `xadd`,
    /// `evalsha`, …) it has served in all.
    pub fn calls(&self, commands: &[&str]) -> Result<u64, String> {
        use std::io::{BufRead, BufReader, Read, Write};
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).map_err(|e| e.to_string())?;
        stream.write_all(b"INFO commandstats\r\n").map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(stream);
        let mut header = String::new();
        reader.read_line(&mut header).map_err(|e| e.to_string())?;
        let length: usize = header
            .trim()
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .ok_or(format!("not a bulk reply: {header:?}"))?;
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).map_err(|e| e.to_string())?;
        let info = String::from_utf8_lossy(&body);
        let calls = |command: &str| -> u64 {
            info.lines()
                .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
                .and_then(|rest| rest.split(',').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Ok(commands.iter().map(|command| calls(command)).sum())
    }

    /// Starts `redis-cli monitor` on it: every command it runs from now on, each line naming
    /// who sent it (`[0 127.0.0.1:port]` a client, `[0 lua]` a script).
    pub fn monitor(&self) -> Result<Monitor, String> {
        let path = self.dir.join(format!("monitor-{}.log", random_suffix()));
        let file = std::fs::File::create(&path).map_err(|e| e.to_string())?;
        let child = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "monitor"])
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-cli ({e}): it comes with the Debian package redis-server"))?;
        let monitor = Monitor { child, path, port: self.port };
        // Attached once a marker command shows up in its output.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            self.calls(&[])?;
            if std::fs::read_to_string(&monitor.path).is_ok_and(|text| text.contains("commandstats")) {
                return Ok(monitor);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("redis-cli monitor did not attach within 10 s".to_owned())
    }

    /// Kills it (as a crash would: no shutdown, nothing saved).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, from its append-only file.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.spawn()
    }
}

/// A running `redis-cli monitor` ([`RedisServer::monitor`]).
#[derive(Debug)]
pub struct Monitor {
    child: Child,
    path: PathBuf,
    port: u16,
}

impl Monitor {
    /// Stops it and answers every line it saw, after the commands run so far have reached it.
    pub fn finish(mut self) -> Result<Vec<String>, String> {
        let marker = format!("monitor-end-{}", random_suffix());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            use std::io::Write;
            let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).map_err(|e| e.to_string())?;
            stream.write_all(format!("ECHO {marker}\r\n").as_bytes()).map_err(|e| e.to_string())?;
            let text = std::fs::read_to_string(&self.path).map_err(|e| e.to_string())?;
            if text.contains(&marker) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Ok(text.lines().map(str::to_owned).collect());
            }
            if Instant::now() > deadline {
                return Err("redis-cli monitor fell behind by 10 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn random_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of three primaries (no replicas) on free loopback ports, made with
/// `redis-cli --cluster create`, every slot served before this returns.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts the three nodes and joins them into one cluster.
    pub fn start() -> Result<Self, String> {
        let cluster_args =
            ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"];
        let nodes = (0..3).map(|_| RedisServer::start_with(&cluster_args)).collect::<Result<Vec<_>, _>>()?;
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port()));
        }
        let output = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .map_err(|e| format!("cannot run redis-cli ({e}): it comes with the Debian package redis-server"))?;
        if !output.status.success() {
            return Err(format!("redis-cli --cluster create failed: {}", String::from_utf8_lossy(&output.stdout)));
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if nodes.iter().all(|node| cluster_ok(node.port())) {
                return Ok(Self { nodes });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("the Redis Cluster did not reach cluster_state:ok within 20 s".to_owned())
    }

    /// `redis://127.0.0.1:<port>/` of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

fn cluster_ok(port: u16) -> bool {
    Command::new("redis-cli")
        .args(["-p", &port.to_string(), "cluster", "info"])
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains("cluster_state:ok"))
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("no free loopback port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut answer = [0u8; 7];
    stream.read_exact(&mut answer).is_ok() && &answer == b"+PONG\r\n"
}

/// One guard decision as a start makes it (the number and the client address counted), without
/// a send: `true` when admitted (and counted). For the benchmark of decisions per second.
pub async fn guard_decision<S: crate::Store>(
    store: &S,
    rules: &crate::GuardRules,
    mobile: &otp_core::MobileNumber,
    client_ip: std::net::IpAddr,
) -> Result<bool, otp_core::Error> {
    use crate::rules::Subject;
    use crate::store::{Admission, Counted, GuardKey};
    let counted = [
        Counted { key: GuardKey::Number(mobile), limits: rules.limits_for(Subject::Number) },
        Counted {
            key: GuardKey::ClientIp(rules.client_subject(client_ip)),
            limits: rules.limits_for(Subject::ClientIp),
        },
    ];
    let ticket = u128::from_le_bytes(crate::id::random_bytes()?);
    Ok(store.admit(&counted, ticket).await? == Admission::Admitted)
}

/// Finishes `n` new sessions in `store` as the verifier does (stored with a record of a real
/// verification's size, then approved), for the benchmark of what tombstones cost.
pub async fn finish_sessions(store: &crate::MemoryStore, n: usize) -> Result<(), otp_core::Error> {
    use crate::store::{Generation, Lifetimes, State, Store};
    let lifetimes = Lifetimes { session: Duration::from_secs(600), retention: crate::DEFAULT_RETENTION };
    let record = crate::verifier::sample_record()?;
    for _ in 0..n {
        let id = crate::VerificationId::random()?;
        store.put_session(&id, b"payload", &record, lifetimes, None).await?;
        store.end_session(&id, Generation::Any, State::Approved, &record, lifetimes.retention, None).await?;
    }
    Ok(())
}

/// How many tombstones (finished sessions) the memory store keeps now.
pub fn tombstones(store: &crate::MemoryStore) -> usize {
    store.tombstones()
}
