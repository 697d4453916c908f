//! `octolink`: keys, pairing, agent and remote nodes, file transfer, a live
//! dashboard and a one-command demo.
#![forbid(unsafe_code)]

mod commands;
mod error;
mod home;
mod node;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use home::Home;

#[derive(Parser)]
#[command(
    name = "octolink",
    version,
    about = "Authenticated, encrypted robot communications over UDP"
)]
struct Cli {
    /// State directory (key pair, associates). Default: $OCTOLINK_HOME or
    /// ~/.config/octolink.
    #[arg(long, global = true)]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create this node's key pair.
    Keygen {
        #[arg(long, default_value_t = 2048)]
        bits: usize,
        /// Replace an existing key.
        #[arg(long)]
        force: bool,
    },
    /// Print this node's ID and public key.
    Id,
    /// Pair with a node: trust its public key (a file, or the PEM text).
    Trust {
        key: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        addr: Option<SocketAddr>,
        #[arg(long, default_value = "agent")]
        role: octolink::Role,
    },
    /// List the associates, with their history.
    Associates,
    /// Run an agent: publish state, take commands, receive files.
    Agent {
        #[arg(long, default_value = "0.0.0.0:7400")]
        bind: SocketAddr,
        /// Where received files go (default: HOME/inbox).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Stop after this many seconds.
        #[arg(long = "for")]
        duration: Option<f64>,
    },
    /// Connect to an agent: show its state, set parameters, send commands.
    Remote {
        peer: String,
        #[arg(long, default_value = "0.0.0.0:0")]
        bind: SocketAddr,
        /// Set a parameter: NAME=VALUE (battery, speed, heading, mode).
        #[arg(long = "set")]
        sets: Vec<String>,
        /// Send a command.
        #[arg(long = "command")]
        commands: Vec<String>,
        /// Stop after this many seconds.
        #[arg(long = "for")]
        duration: Option<f64>,
    },
    /// Measure round-trip times to a peer.
    Ping {
        peer: String,
        #[arg(short = 'c', long, default_value_t = 5)]
        count: u32,
        /// Milliseconds between pings.
        #[arg(short = 'i', long, default_value_t = 1000)]
        interval: u64,
        #[arg(long, default_value = "0.0.0.0:0")]
        bind: SocketAddr,
    },
    /// Send a file to a peer.
    Send {
        peer: String,
        file: PathBuf,
        #[arg(long, default_value = "0.0.0.0:0")]
        bind: SocketAddr,
    },
    /// Receive files into a directory.
    Recv {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "0.0.0.0:7400")]
        bind: SocketAddr,
        /// Exit after this many files.
        #[arg(long)]
        count: Option<usize>,
        #[arg(long = "for")]
        duration: Option<f64>,
    },
    /// Live dashboard of a node: sessions, RTT, loss, bandwidth, drops.
    Top {
        #[arg(long, default_value = "0.0.0.0:7400")]
        bind: SocketAddr,
    },
    /// Two nodes on loopback in one process: handshake, state sync, a blob.
    Demo(commands::demo::DemoArgs),
}

fn main() -> ExitCode {
    // Even a bug prints one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("octolink: internal error: {info}");
    }));
    let cli = Cli::parse();
    let home = Home::resolve(cli.home);
    let secs = |s: Option<f64>| s.map(std::time::Duration::from_secs_f64);
    let result = match cli.command {
        Cmd::Keygen { bits, force } => commands::keys::keygen(&home, bits, force),
        Cmd::Id => commands::keys::id(&home),
        Cmd::Trust {
            key,
            name,
            addr,
            role,
        } => commands::keys::trust(&home, &key, &name, addr, role),
        Cmd::Associates => commands::keys::associates(&home),
        Cmd::Agent { bind, dir, duration } => commands::run::agent(&home, bind, dir, secs(duration)),
        Cmd::Remote {
            peer,
            bind,
            sets,
            commands: cmds,
            duration,
        } => commands::run::remote(&home, &peer, bind, &sets, &cmds, secs(duration)),
        Cmd::Ping {
            peer,
            count,
            interval,
            bind,
        } => commands::ping::ping(&home, &peer, count, interval, bind),
        Cmd::Send { peer, file, bind } => commands::transfer::send(&home, &peer, &file, bind),
        Cmd::Recv {
            dir,
            bind,
            count,
            duration,
        } => commands::transfer::recv(&home, &dir, bind, count, secs(duration)),
        Cmd::Top { bind } => commands::top::top(&home, bind),
        Cmd::Demo(args) => commands::demo::demo(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("octolink: {e}");
            ExitCode::FAILURE
        }
    }
}
