//! Database servers of a test's own: child processes on free loopback ports, never the shared
//! servers on the standard ports, that a test can crash (`SIGKILL`), freeze (`SIGSTOP`) and
//! start again on the same data, and that go away with the test, pass or fail.

use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::services::{unavailable, unique_name};

/// How long a server may take to open its port, crash recovery included.
const START_LIMIT: Duration = Duration::from_secs(30);

/// A server of this test's own. Dropping it kills it and removes its data directory.
pub struct Server {
    name: &'static str,
    // Declared before `dir`, so the server is killed before its directory is removed.
    process: ServerProcess,
    dir: TempDir,
    port: u16,
    url: String,
}

impl Server {
    /// What it is: `Redis` or `PostgreSQL`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Where to connect.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Crashes the server: `SIGKILL` to every process of it, which gets no chance to flush,
    /// close connections or say goodbye. Its clients see their connections reset.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the killed server again on the same data directory and port, and waits until the
    /// port accepts connections (which may be before it is ready to answer: PostgreSQL first
    /// replays its write-ahead log and turns clients away meanwhile).
    pub async fn restart(&mut self) {
        self.process.spawn();
        self.process.wait_for_port(self.port, &self.dir).await;
    }

    /// Freezes the server (`SIGSTOP`): its connections stay open and new ones are accepted by
    /// the kernel, but nothing is answered, as when a server hangs or its machine stalls.
    pub fn pause(&self) {
        self.process.signal("STOP");
    }

    /// Lets a paused server run again (`SIGCONT`); it then answers what was sent meanwhile.
    pub fn resume(&self) {
        self.process.signal("CONT");
    }
}

/// A Redis server on a free port whose append-only file is written and fsynced before each
/// write is acknowledged (`appendfsync always`), so a killed server comes back with every write
/// it acknowledged: the durability a deployment that relies on Redis for sessions configures.
/// Without persistence a killed Redis forgets everything, and no session store can change that.
/// `None` (after a notice) when `redis-server` is not installed; see [`unavailable`].
pub async fn redis_server() -> Option<Server> {
    let Some(bin) = find_program(&["redis-server"], &[]) else {
        return unavailable("redis-server is not installed (apt-get install redis-server)");
    };
    let dir = TempDir::new("typed_session_redis_");
    let port = free_port();
    let args = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--dir",
        &dir.path().display().to_string(),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--daemonize",
        "no",
    ]
    .map(str::to_owned);
    let process = ServerProcess::new(bin.join("redis-server"), &args, None, &dir);
    let url = format!("redis://127.0.0.1:{port}");
    Some(Server::start("Redis", process, dir, port, url).await)
}

/// A PostgreSQL cluster of its own (`initdb` into a temporary directory, trust authentication,
/// user `postgres`) on a free port, with its durability settings at their defaults, stated
/// anyway: `fsync` and `synchronous_commit` on, so a commit is acknowledged once its write-ahead
/// log is on disk and survives the server being killed. Run as the `postgres` account when this
/// process is root, since PostgreSQL refuses to run as root. `None` (after a notice) when the
/// PostgreSQL server programs are not installed; see [`unavailable`].
pub async fn postgres_server() -> Option<Server> {
    let lib_dirs = postgres_bin_dirs();
    let Some(bin) = find_program(&["initdb", "postgres"], &lib_dirs) else {
        return unavailable(
            "the PostgreSQL server programs (initdb, postgres) are not installed \
             (apt-get install postgresql)",
        );
    };
    let user = if running_as_root() {
        let Some(account) = account("postgres") else {
            return unavailable("running as root, and there is no postgres account to run as");
        };
        Some(account)
    } else {
        None
    };
    let dir = TempDir::new("typed_session_pg_");
    let data = dir.path().join("data");
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
    }
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .arg("--pgdata")
        .arg(&data)
        .args(["--username=postgres", "--auth=trust", "--encoding=UTF8"])
        // Syncing the fresh cluster to disk would only guard it against a crash of the
        // machine, which these tests do not simulate; the server itself syncs as usual.
        .args(["--locale=C", "--no-sync", "--no-instructions"])
        .stdin(Stdio::null())
        .stdout(dir.log())
        .stderr(dir.log());
    as_user(&mut initdb, user);
    let status = initdb.status().unwrap();
    assert!(status.success(), "initdb failed: {}", dir.log_text());

    let port = free_port();
    let args = [
        "-D".to_owned(),
        data.display().to_string(),
        "-p".to_owned(),
        port.to_string(),
        "-k".to_owned(),
        dir.path().display().to_string(),
        "-c".to_owned(),
        "listen_addresses=127.0.0.1".to_owned(),
        "-c".to_owned(),
        "fsync=on".to_owned(),
        "-c".to_owned(),
        "synchronous_commit=on".to_owned(),
    ];
    let process = ServerProcess::new(bin.join("postgres"), &args, user, &dir);
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    Some(Server::start("PostgreSQL", process, dir, port, url).await)
}

impl Server {
    async fn start(
        name: &'static str,
        mut process: ServerProcess,
        dir: TempDir,
        port: u16,
        url: String,
    ) -> Self {
        process.spawn();
        process.wait_for_port(port, &dir).await;
        Self {
            name,
            process,
            dir,
            port,
            url,
        }
    }
}

/// A server running as a child process. Signals go to the whole tree of processes it started
/// (PostgreSQL's backends make their own process groups, so a group signal would miss them), as
/// a crash or a freeze of its machine would. Killed when dropped.
struct ServerProcess {
    program: PathBuf,
    args: Vec<String>,
    user: Option<(u32, u32)>,
    log: PathBuf,
    child: Option<Child>,
}

impl ServerProcess {
    fn new(program: PathBuf, args: &[String], user: Option<(u32, u32)>, dir: &TempDir) -> Self {
        Self {
            program,
            args: args.to_vec(),
            user,
            log: dir.log_path(),
            child: None,
        }
    }

    fn spawn(&mut self) {
        assert!(
            self.child.is_none(),
            "{} is running",
            self.program.display()
        );
        let log = append(&self.log);
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        as_user(&mut command, self.user);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.program.display()));
        self.child = Some(child);
    }

    /// Sends `signal` (a name such as `STOP`) to the server and every process under it.
    fn signal(&self, signal: &str) {
        let root = self.child.as_ref().expect("the server is running").id();
        assert!(
            signal_tree(root, signal),
            "{} is no longer running",
            self.program.display()
        );
    }

    /// Kills the server and every process under it, if it is running, and reaps it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_tree(child.id(), "KILL");
            let _ = child.wait();
        }
    }

    /// Waits until the server accepts TCP connections on `port`; fails, with the server's log,
    /// when it exits or takes longer than [`START_LIMIT`].
    async fn wait_for_port(&mut self, port: u16, dir: &TempDir) {
        let started = Instant::now();
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        while started.elapsed() < START_LIMIT {
            if TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok() {
                return;
            }
            let child = self.child.as_mut().expect("the server was started");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                panic!(
                    "{} exited ({status}) before opening port {port}: {}",
                    self.program.display(),
                    dir.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "{} did not open port {port} within {START_LIMIT:?}: {}",
            self.program.display(),
            dir.log_text()
        );
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `signal` to `root` and every process under it; `false` if `root` is gone. `root` is
/// stopped first, so that it starts no process that the signal would miss.
fn signal_tree(root: u32, signal: &str) -> bool {
    if !send(&[root], "STOP") {
        return false;
    }
    // A process that ends meanwhile needs no signal: a failure to reach one is harmless.
    send(&process_tree(root), signal);
    true
}

/// Sends `signal` to `pids` with the shell's `kill`, which needs no package of its own (the
/// standard library can send only `SIGKILL`, and only to its own child); `false` if it did not
/// reach them all.
fn send(pids: &[u32], signal: &str) -> bool {
    Command::new("sh")
        .args(["-c", r#"kill -s "$0" "$@""#, signal])
        .args(pids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `root` and every live process descended from it, parents before children (from `/proc`).
fn process_tree(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (command) state ppid …`, where the command may hold spaces and parentheses.
            let after_command = &stat[stat.rfind(')')? + 1..];
            let ppid = after_command.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut tree = vec![root];
    let mut next = 0;
    while let Some(&parent) = tree.get(next) {
        tree.extend(
            parents
                .iter()
                .filter(|&&(_, ppid)| ppid == parent)
                .map(|&(pid, _)| pid),
        );
        next += 1;
    }
    tree
}

/// A directory of the test's own under the system's temporary directory, holding a server's
/// data and its log. Removed when dropped, except when the test is failing: then it stays, and
/// its path is printed, for the log.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(unique_name(prefix));
        std::fs::create_dir(&path).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn log_path(&self) -> PathBuf {
        self.0.join("server.log")
    }

    fn log(&self) -> File {
        append(&self.log_path())
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the server's data and log are kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// A loopback port nothing listens on right now: the kernel's pick, released for the server.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The first directory of `PATH`, then of `extra`, that holds every one of `programs` (so that
/// `initdb` and `postgres` come from one installation).
fn find_program(programs: &[&str], extra: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().cloned())
        .find(|dir| programs.iter().all(|program| dir.join(program).is_file()))
}

/// Debian's PostgreSQL installations, newest first: `/usr/lib/postgresql/<major>/bin`, which is
/// not on the `PATH`.
fn postgres_bin_dirs() -> Vec<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|&(major, _)| std::cmp::Reverse(major));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

/// Whether this process runs as root (`/proc/self` belongs to the effective user).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// The uid and gid of account `name`, from `/etc/passwd`.
fn account(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let uid = fields.nth(1)?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

/// Runs `command` as `user` (uid, gid), if given. Switching from root also drops root's
/// supplementary groups.
fn as_user(command: &mut Command, user: Option<(u32, u32)>) {
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
}
