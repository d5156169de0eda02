//! `ws-bench suite`: every mode against the baseline and the host, the same way every
//! time, written to a dated results file in `docs/bench-results/`.
//!
//! It expects release binaries built by `cargo build --release --workspace`
//! (`target/release/mswoole`, `target/release/libmswoole_*.so`, and this `ws-bench`).
//! Each measurement gets a fresh server started under `taskset -c <server-cpu>` and a
//! fresh load-generator process (this executable, one thread) under
//! `taskset -c <client-cpu>`, whose JSON line it reads back. A scenario that cannot run
//! (a server that does not start, a module that does not answer) is recorded as failed
//! with its reason and the suite goes on.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use clap::Args;

use crate::{
    machine::Machine,
    record::{label, scenario, Record},
    report::Outcome,
    results,
    server::{self, HostSetup, Registry, Server},
};

/// Arguments of `suite`.
#[derive(Debug, Clone, Args)]
pub struct SuiteArgs {
    /// Workspace root (default: found from this executable's path, else the current directory).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// The host binary (default: ROOT/target/release/mswoole).
    #[arg(long)]
    pub host_bin: Option<PathBuf>,
    /// Directory of the built plugins (default: ROOT/target/release).
    #[arg(long)]
    pub plugins: Option<PathBuf>,
    /// Redis URL: also run rr and fanout with the Redis registry (skipped without it).
    #[arg(long)]
    pub redis_url: Option<String>,
    /// CPU the server is pinned to.
    #[arg(long, default_value_t = 0)]
    pub server_cpu: usize,
    /// CPU the load generator is pinned to.
    #[arg(long, default_value_t = 1)]
    pub client_cpu: usize,
    /// Do not pin (no taskset); the numbers are then not comparable.
    #[arg(long)]
    pub no_pin: bool,
    /// Connections of `idle`.
    #[arg(long, default_value_t = 19_000)]
    pub idle_conns: usize,
    /// Seconds `idle` holds its connections (one heartbeat round is 20 s).
    #[arg(long, default_value_t = 25.0)]
    pub idle_hold: f64,
    /// Measured seconds of `rr`, `rate` and `swap`.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Warm-up seconds before each measured window.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Offered load of `rate`, requests/s.
    #[arg(long, default_value_t = 20_000.0)]
    pub rate: f64,
    /// Room size of `fanout`.
    #[arg(long, default_value_t = 10_000)]
    pub fanout_members: usize,
    /// Posts measured by `fanout`.
    #[arg(long, default_value_t = 5)]
    pub fanout_rounds: usize,
    /// Plugin replacements during `swap`.
    #[arg(long, default_value_t = 4)]
    pub swaps: usize,
    /// Runs per scenario and server, interleaved; the median run is kept (against noise
    /// on a shared machine).
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Only these scenarios (comma-separated names: idle, rr-100, rr-1000, rate, fanout, fanout-2-hosts, swap).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Where the results file goes (default: ROOT/docs/bench-results).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Do not update the latest-results section of ROOT/docs/BENCHMARKS.md (a run with
    /// `--only` never does: a subset must not replace the whole table).
    #[arg(long)]
    pub no_docs: bool,
}

/// The workspace root: `--root`, else the directory above `target/` that holds this
/// executable, else the current directory.
fn find_root(args: &SuiteArgs) -> Result<PathBuf, String> {
    if let Some(root) = &args.root {
        return Ok(root.clone());
    }
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        exe.ancestors()
            .find(|dir| dir.file_name().is_some_and(|n| n == "target"))
            .and_then(Path::parent)
            .map(Path::to_path_buf)
    });
    match from_exe {
        Some(root) if root.join("Cargo.toml").is_file() => Ok(root),
        _ => std::env::current_dir().map_err(|e| format!("current directory: {e}")),
    }
}

/// Everything a scenario needs to start servers and load generators.
struct Bench {
    args: SuiteArgs,
    exe: PathBuf,
    host: HostSetup,
    server_cpu: Option<usize>,
    client_cpu: Option<usize>,
}

impl Bench {
    /// A host setup with this registry.
    fn host_setup(&self, registry: Registry) -> HostSetup {
        HostSetup {
            registry,
            ..self.host.clone()
        }
    }

    /// Runs the load generator (`exe --json ARGS`) pinned to the client CPU and reads its JSON line.
    fn client(&self, args: &[String], limit: Duration) -> Result<Outcome, String> {
        let mut command = server::pinned(&self.exe, self.client_cpu);
        command
            .arg("--json")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start the load generator: {e}"))?;
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let output = match rx.recv_timeout(limit) {
            Ok(output) => output.map_err(|e| format!("load generator: {e}"))?,
            Err(_) => {
                // Ours, by pid: the load generator that overran.
                if let Some(pid) = i32::try_from(pid)
                    .ok()
                    .and_then(rustix::process::Pid::from_raw)
                {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::Kill);
                }
                return Err(format!(
                    "the load generator did not finish within {limit:?}"
                ));
            }
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'));
        match line {
            Some(line) => serde_json::from_str(line)
                .map_err(|e| format!("unreadable load generator output {line:?}: {e}")),
            None => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                Err(stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .map_or_else(
                        || format!("load generator exited with {}", output.status),
                        |l| l.trim().to_string(),
                    ))
            }
        }
    }

    /// Runs `run(server)` for every server, `--repeat` times, interleaved (b, h, b, h, ...)
    /// so that a noisy moment of the shared machine hits all servers alike; keeps, per
    /// server, the run with the median headline figure, and lists all of them.
    fn scenario(
        &self,
        name: &str,
        servers: &[&str],
        run: &dyn Fn(&str) -> Result<Outcome, String>,
    ) -> Vec<Record> {
        let mut results: Vec<Vec<Result<Outcome, String>>> = vec![Vec::new(); servers.len()];
        for _ in 0..self.args.repeat.max(1) {
            for (which, runs) in servers.iter().zip(results.iter_mut()) {
                runs.push(run(which));
            }
        }
        servers
            .iter()
            .zip(results)
            .map(|(which, runs)| Record::median(name, which, runs))
            .collect()
    }

    /// Starts the server `which` describes.
    fn start(&self, which: &str) -> Result<Server, String> {
        match which {
            // The host runs `workers = 1` on tokio's current-thread runtime: so does the baseline.
            label::BASELINE => Server::baseline(&self.exe, None, self.server_cpu),
            label::BASELINE_MULTI_THREAD => Server::baseline(&self.exe, Some(1), self.server_cpu),
            label::HOST => Server::host(&self.host_setup(Registry::Memory), self.server_cpu),
            label::HOST_REDIS => {
                let url = self.args.redis_url.clone().ok_or("no --redis-url")?;
                Server::host(
                    &self.host_setup(Registry::Redis {
                        url,
                        prefix: redis_prefix(),
                    }),
                    self.server_cpu,
                )
            }
            other => Err(format!("unknown server {other}")),
        }
    }

    /// Starts `which`, runs the load generator with `args(server)`, stops the server.
    fn against(
        &self,
        which: &str,
        limit: Duration,
        args: impl FnOnce(&Server) -> Result<Vec<String>, String>,
    ) -> Result<Outcome, String> {
        let server = self.start(which)?;
        // Let the server finish starting (plugin scan, watcher) before loading it.
        std::thread::sleep(Duration::from_millis(300));
        let outcome = args(&server).and_then(|args| self.client(&args, limit));
        server.stop();
        outcome
    }

    fn secs(&self, extra: f64) -> Duration {
        Duration::from_secs_f64(self.args.warmup + self.args.duration + extra)
    }

    fn idle(&self, which: &str) -> Result<Outcome, String> {
        let limit = Duration::from_secs_f64(self.args.idle_hold + 300.0);
        self.against(which, limit, |s| {
            Ok(strings(&[
                "idle",
                "--url",
                &s.url(),
                "--conns",
                &self.args.idle_conns.to_string(),
                "--hold",
                &self.args.idle_hold.to_string(),
                "--heartbeat",
                "20",
                "--pid",
                &s.pid.to_string(),
            ]))
        })
    }

    fn rr(&self, which: &str, conns: usize) -> Result<Outcome, String> {
        self.against(which, self.secs(120.0), |s| {
            Ok(strings(&[
                "rr",
                "--url",
                &s.url(),
                "--conns",
                &conns.to_string(),
                "--duration",
                &self.args.duration.to_string(),
                "--warmup",
                &self.args.warmup.to_string(),
                "--pid",
                &s.pid.to_string(),
            ]))
        })
    }

    fn rate(&self, which: &str) -> Result<Outcome, String> {
        self.against(which, self.secs(120.0), |s| {
            Ok(strings(&[
                "rate",
                "--url",
                &s.url(),
                "--conns",
                "100",
                "--rate",
                &self.args.rate.to_string(),
                "--duration",
                &self.args.duration.to_string(),
                "--warmup",
                &self.args.warmup.to_string(),
                "--pid",
                &s.pid.to_string(),
            ]))
        })
    }

    fn fanout_args(&self, servers: &[&Server], floor: bool) -> Vec<String> {
        let mut args = strings(&[
            "fanout",
            "--members",
            &self.args.fanout_members.to_string(),
            "--rounds",
            &self.args.fanout_rounds.to_string(),
        ]);
        for server in servers {
            args.extend([
                "--url".into(),
                server.url(),
                "--pid".into(),
                server.pid.to_string(),
            ]);
        }
        if floor {
            args.push("--floor".into());
        }
        args
    }

    fn fanout(&self, which: &str) -> Result<Outcome, String> {
        let floor = which == label::BASELINE;
        self.against(which, Duration::from_secs(300), |s| {
            Ok(self.fanout_args(&[s], floor))
        })
    }

    /// Two hosts on one Redis, members split between them, the wall on the first.
    fn fanout_two_hosts(&self) -> Result<Outcome, String> {
        let url = self.args.redis_url.clone().ok_or("no --redis-url")?;
        let setup = self.host_setup(Registry::Redis {
            url,
            prefix: redis_prefix(),
        });
        let a = Server::host(&setup, self.server_cpu)?;
        let b = Server::host(&setup, self.server_cpu)?;
        std::thread::sleep(Duration::from_millis(300));
        let outcome = self.client(
            &self.fanout_args(&[&a, &b], false),
            Duration::from_secs(300),
        );
        a.stop();
        b.stop();
        outcome
    }

    fn swap(&self) -> Result<Outcome, String> {
        self.against(label::HOST, self.secs(120.0), |s| {
            let variants = make_variants(
                &s.dir.join("plugins").join("libmswoole_index.so"),
                &s.dir.join("variants"),
                2,
            )?;
            let variants: Vec<String> = variants.iter().map(|v| v.display().to_string()).collect();
            let mut args = strings(&[
                "swap",
                "--url",
                &s.url(),
                "--conns",
                "100",
                "--duration",
                &self.args.duration.to_string(),
                "--warmup",
                &self.args.warmup.to_string(),
                "--pid",
                &s.pid.to_string(),
                "--swaps",
                &self.args.swaps.to_string(),
                "--plugin-dir",
                &s.dir.join("plugins").display().to_string(),
                "--variants",
                &variants.join(","),
            ]);
            if let Some(manager) = s.manager_url() {
                args.push("--manager".into());
                args.push(manager);
            }
            Ok(args)
        })
    }
}

/// `&str`s to owned arguments.
fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

/// A key prefix no other run (and no MSwoole) uses.
fn redis_prefix() -> String {
    format!("wsbench{}:", crate::machine::now_secs())
}

/// `count` copies of the plugin `original`, each with a different trailer appended
/// (the dynamic loader ignores bytes after the ELF contents), so every replacement is a
/// genuinely new file of the same code.
pub fn make_variants(original: &Path, dir: &Path, count: usize) -> Result<Vec<PathBuf>, String> {
    let bytes = std::fs::read(original).map_err(|e| format!("read {}: {e}", original.display()))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    (0..count)
        .map(|n| {
            let path = dir.join(format!("libmswoole_index.variant{n}.so"));
            let mut data = bytes.clone();
            data.extend_from_slice(format!("\nws-bench variant {n}\n").as_bytes());
            std::fs::write(&path, data).map_err(|e| format!("write {}: {e}", path.display()))?;
            Ok(path)
        })
        .collect()
}

/// Runs the suite; returns the exit code (0: every scenario ran; 2: some failed).
pub fn run(args: &SuiteArgs) -> Result<i32, String> {
    let root = find_root(args)?;
    let release = root.join("target").join("release");
    let host_bin = args
        .host_bin
        .clone()
        .unwrap_or_else(|| release.join("mswoole"));
    let plugins = args.plugins.clone().unwrap_or_else(|| release.clone());
    let build_hint = "build the release binaries first: cargo build --release --workspace";
    if !host_bin.is_file() {
        return Err(format!("{} not found; {build_hint}", host_bin.display()));
    }
    server::plugin_files(&plugins).map_err(|e| format!("{e}; {build_hint}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    if exe.components().any(|c| c.as_os_str() == "debug") {
        eprintln!("ws-bench suite: warning: this ws-bench is a debug build; the load generator will be the bottleneck");
    }
    let pin = !args.no_pin;
    if pin && Command::new("taskset").arg("-V").output().is_err() {
        return Err("taskset not found (util-linux); install it or pass --no-pin".into());
    }
    let bench = Bench {
        args: args.clone(),
        exe,
        host: HostSetup {
            bin: host_bin,
            plugins,
            registry: Registry::Memory,
            workers: 1,
            max_connections: args.idle_conns.max(args.fanout_members) + 900,
            idle_s: 600,
            outbound_bytes: None,
            extra_plugins: Vec::new(),
        },
        server_cpu: pin.then_some(args.server_cpu),
        client_cpu: pin.then_some(args.client_cpu),
    };
    let machine = Machine::read(&root);
    let busy: f64 = machine
        .loadavg
        .split_whitespace()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0.0);
    if busy > 1.0 {
        eprintln!(
            "ws-bench suite: warning: load average {} before starting: other work shares these cores, expect noisy numbers",
            machine.loadavg
        );
    }
    let started = Instant::now();
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let no_redis = "no --redis-url given";
    let log = |r: &Record| {
        eprintln!(
            "[{:>5.0} s] {} / {}: {}",
            started.elapsed().as_secs_f64(),
            r.scenario,
            r.server,
            r.summary()
        );
    };
    let mut records = Vec::new();
    let mut add = |new: Vec<Record>| {
        for r in new {
            log(&r);
            records.push(r);
        }
    };
    let both = [label::BASELINE, label::HOST];
    let with_redis = [label::BASELINE, label::HOST, label::HOST_REDIS];
    let redis = args.redis_url.is_some();
    if wanted(scenario::IDLE) {
        add(bench.scenario(scenario::IDLE, &both, &|w| bench.idle(w)));
    }
    if wanted(scenario::RR_100) {
        let servers: &[&str] = if redis { &with_redis } else { &both };
        add(bench.scenario(scenario::RR_100, servers, &|w| bench.rr(w, 100)));
        if !redis {
            add(vec![Record::skipped(
                scenario::RR_100,
                label::HOST_REDIS,
                no_redis,
            )]);
        }
    }
    if wanted(scenario::RR_1000) {
        let servers = [label::BASELINE, label::HOST, label::BASELINE_MULTI_THREAD];
        add(bench.scenario(scenario::RR_1000, &servers, &|w| bench.rr(w, 1000)));
    }
    if wanted(scenario::RATE) {
        add(bench.scenario(scenario::RATE, &both, &|w| bench.rate(w)));
    }
    if wanted(scenario::FANOUT) {
        add(bench.scenario(scenario::FANOUT, &both, &|w| bench.fanout(w)));
    }
    if wanted(scenario::FANOUT_2) {
        if redis {
            let two_hosts = |_: &str| bench.fanout_two_hosts();
            add(bench.scenario(scenario::FANOUT_2, &[label::HOST_REDIS], &two_hosts));
        } else {
            add(vec![Record::skipped(
                scenario::FANOUT_2,
                label::HOST_REDIS,
                no_redis,
            )]);
        }
    }
    if wanted(scenario::SWAP) {
        add(bench.scenario(scenario::SWAP, &[label::HOST], &|_| bench.swap()));
    }
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    let setup = results::Setup {
        command: command_line,
        server_cpu: bench.server_cpu,
        client_cpu: bench.client_cpu,
        idle_conns: args.idle_conns,
        rate: args.rate,
        fanout_members: args.fanout_members,
        duration: args.duration,
        elapsed_s: started.elapsed().as_secs(),
        loadavg_end: crate::machine::loadavg(),
        repeat: args.repeat.max(1),
    };
    let out_dir = args
        .out_dir
        .clone()
        .unwrap_or_else(|| root.join("docs").join("bench-results"));
    let file = results::write(&out_dir, &machine, &setup, &records)?;
    println!("{}", results::targets_table(&records, &setup));
    println!("results written to {}", file.display());
    if !args.no_docs && args.only.is_empty() {
        match results::update_docs(
            &root.join("docs").join("BENCHMARKS.md"),
            &file,
            &machine,
            &records,
            &setup,
        ) {
            Ok(()) => println!("docs/BENCHMARKS.md updated"),
            Err(e) => eprintln!("ws-bench suite: docs/BENCHMARKS.md not updated: {e}"),
        }
    }
    let failed = records.iter().any(|r| r.error.is_some());
    Ok(if failed { 2 } else { 0 })
}
