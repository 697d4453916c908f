//! A three-namespace lab: the agent's, the remote's, and a "wire" between
//! them where `octolink-netem` bridges two veth pairs. Every name and
//! address here lives in namespaces the lab creates and deletes (on drop,
//! so on a failed assertion too).

pub mod process;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

pub use process::Running;

/// Namespaces of a killed run carry this prefix and its pid.
const PREFIX: &str = "oltest";
pub const AGENT_IP: &str = "10.77.0.1";
pub const REMOTE_IP: &str = "10.77.0.2";
pub const AGENT_PORT: u16 = 7400;

/// Scenarios share the CPU badly (two cores, real time): one at a time.
pub static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[derive(Clone, Copy)]
pub enum Ns {
    Agent,
    Remote,
    Wire,
}

pub struct Lab {
    names: [String; 3],
    pub dir: PathBuf,
    netem: Option<Child>,
    pub agent_home: PathBuf,
    pub remote_home: PathBuf,
}

/// Why the suite cannot run here, if it cannot (probed once per run).
pub fn unavailable() -> Option<String> {
    static ANSWER: OnceLock<Option<String>> = OnceLock::new();
    ANSWER.get_or_init(probe).clone()
}

fn probe() -> Option<String> {
    if std::env::var_os("OCTOLINK_SKIP_NETNS").is_some() {
        return Some("OCTOLINK_SKIP_NETNS is set".into());
    }
    match Command::new("id").arg("-u").output() {
        Ok(o) if String::from_utf8_lossy(&o.stdout).trim() == "0" => {}
        _ => return Some("not root (network namespaces need CAP_SYS_ADMIN)".into()),
    }
    // Creating one is the only sure test (containers may forbid it).
    let probe = format!("{PREFIX}{}xprobe", std::process::id());
    match Command::new("ip").args(["netns", "add", &probe]).output() {
        Ok(o) if o.status.success() => {
            let _ = Command::new("ip").args(["netns", "del", &probe]).status();
            None
        }
        Ok(o) => Some(format!(
            "`ip netns add` fails here: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(_) => Some("no `ip` command (iproute2)".into()),
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deletes namespaces left by runs that were killed before they could.
fn sweep_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = name.strip_prefix(PREFIX).and_then(|r| r.split('x').next()) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// The `octolink` binary of this build, built first if missing.
pub fn octolink_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let bin = profile_dir.join("octolink");
    if !bin.exists() {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "-q", "-p", "octolink-cli", "--bin", "octolink"]);
        if profile_dir.ends_with("release") {
            cargo.arg("--release");
        }
        assert!(
            cargo.status().expect("cargo runs").success(),
            "cannot build octolink"
        );
    }
    bin
}

impl Lab {
    /// Namespaces, veth pairs, addresses, and two paired key homes.
    pub fn new() -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        sweep_stale();
        let tag = format!(
            "{PREFIX}{}x{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        );
        let names = ["a", "r", "w"].map(|n| format!("{tag}{n}"));
        let dir = std::env::temp_dir().join(&tag);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("lab dir");
        let lab = Self {
            agent_home: dir.join("agent"),
            remote_home: dir.join("remote"),
            names,
            dir,
            netem: None,
        };
        let [a, r, w] = &lab.names;
        for n in &lab.names {
            ip(&["netns", "add", n]);
            ip(&["-n", n, "link", "set", "lo", "up"]);
        }
        ip(&[
            "link", "add", "a0", "netns", a, "type", "veth", "peer", "name", "wa", "netns", w,
        ]);
        ip(&[
            "link", "add", "r0", "netns", r, "type", "veth", "peer", "name", "wr", "netns", w,
        ]);
        ip(&["-n", a, "addr", "add", &format!("{AGENT_IP}/24"), "dev", "a0"]);
        ip(&["-n", r, "addr", "add", &format!("{REMOTE_IP}/24"), "dev", "r0"]);
        for (n, dev) in [(a, "a0"), (r, "r0"), (w, "wa"), (w, "wr")] {
            ip(&["-n", n, "link", "set", dev, "up"]);
        }
        // UDP GSO would hand the bridge 64 KB super-frames that the far
        // veth refuses; make the kernel segment before the wire.
        for (n, dev) in [(a, "a0"), (r, "r0")] {
            ip(&["-n", n, "link", "set", dev, "gso_max_segs", "1"]);
        }
        lab.pair_homes();
        lab
    }

    fn ns(&self, which: Ns) -> &str {
        &self.names[which as usize]
    }

    /// A command run inside a namespace.
    pub fn command(&self, which: Ns, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.ns(which)]).arg(program);
        c
    }

    /// `octolink --home <that side's home>` inside its namespace.
    pub fn octolink(&self, which: Ns) -> Command {
        let home = match which {
            Ns::Agent => &self.agent_home,
            _ => &self.remote_home,
        };
        let mut c = self.command(which, &octolink_bin());
        c.arg("--home").arg(home);
        c
    }

    fn pair_homes(&self) {
        let run = |mut c: Command, args: &[&str]| {
            let out = c.args(args).output().expect("octolink runs");
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        run(self.octolink(Ns::Agent), &["keygen"]);
        run(self.octolink(Ns::Remote), &["keygen"]);
        let key_of = |which: Ns, file: &str| {
            let pem: String = run(self.octolink(which), &["id"])
                .lines()
                .skip(1)
                .collect::<Vec<_>>()
                .join("\n");
            let path = self.dir.join(file);
            std::fs::write(&path, pem).expect("key file");
            path.display().to_string()
        };
        let (agent_key, remote_key) = (key_of(Ns::Agent, "agent.pub"), key_of(Ns::Remote, "remote.pub"));
        let agent_addr = format!("{AGENT_IP}:{AGENT_PORT}");
        run(
            self.octolink(Ns::Remote),
            &["trust", &agent_key, "--name", "agent", "--addr", &agent_addr],
        );
        run(
            self.octolink(Ns::Agent),
            &["trust", &remote_key, "--name", "remote", "--role", "remote"],
        );
    }

    /// (Re)starts the link emulator with `netem_args` (see octolink-netem).
    pub fn shape(&mut self, netem_args: &[&str]) {
        self.stop_netem();
        let child = self
            .command(Ns::Wire, Path::new(env!("CARGO_BIN_EXE_octolink-netem")))
            .args(["--a", "wa", "--b", "wr", "--report-secs", "3600"])
            .args(netem_args)
            .stdout(Stdio::null())
            .spawn()
            .expect("octolink-netem starts");
        self.netem = Some(child);
    }

    fn stop_netem(&mut self) {
        if let Some(mut c) = self.netem.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Takes the wire down on the agent's side (or brings it back up).
    pub fn cut(&self, cut: bool) {
        ip(&[
            "-n",
            self.ns(Ns::Wire),
            "link",
            "set",
            "wa",
            if cut { "down" } else { "up" },
        ]);
    }

    /// Moves the agent to another address in the same subnet.
    pub fn move_agent(&self, new_ip: &str) {
        let a = self.ns(Ns::Agent);
        ip(&["-n", a, "addr", "del", &format!("{AGENT_IP}/24"), "dev", "a0"]);
        ip(&["-n", a, "addr", "add", &format!("{new_ip}/24"), "dev", "a0"]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_netem();
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
