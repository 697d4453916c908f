//! top: a live terminal dashboard of a running node.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event as TermEvent, KeyCode};
use ratatui::layout::{Constraint, Layout};
use ratatui::widgets::{Block, Paragraph, Row, Table};
use ratatui::Frame;

use octolink::Stats;

use crate::error::{fail, Result};
use crate::home::{create_private_dir, Home};
use crate::node::{fmt_duration, Node, NodeOptions};

pub fn top(home: &Home, bind: SocketAddr) -> Result<()> {
    if !std::io::stdout().is_terminal() {
        fail!("top needs a terminal");
    }
    create_private_dir(&home.inbox())?;
    let node = Node::start(
        home,
        NodeOptions {
            bind,
            connect_all: true,
            inbox: Some(home.inbox()),
        },
    )?;
    let mut terminal = ratatui::init();
    let mut prev: BTreeMap<u16, u64> = BTreeMap::new();
    let mut prev_at = Instant::now();
    let result = (|| -> Result<()> {
        loop {
            while node.channel.events().try_recv().is_ok() {}
            let stats = node.channel.stats()?;
            let dt = prev_at.elapsed().as_secs_f64().max(1e-3);
            prev_at = Instant::now();
            let rates: BTreeMap<u16, f64> = stats
                .couriers
                .iter()
                .map(|c| {
                    let bytes = c.bytes_sent + c.bytes_received;
                    let before = prev.insert(c.id, bytes).unwrap_or(bytes);
                    (c.id, (bytes - before) as f64 / dt)
                })
                .collect();
            terminal.draw(|f| draw(f, &node, &stats, &rates))?;
            if event::poll(Duration::from_millis(500))? {
                if let TermEvent::Key(k) = event::read()? {
                    if matches!(k.code, KeyCode::Char('q') | KeyCode::Esc) {
                        return Ok(());
                    }
                }
            }
        }
    })();
    ratatui::restore();
    node.channel.shutdown()?;
    result
}

fn draw(f: &mut Frame<'_>, node: &Node, stats: &Stats, rates: &BTreeMap<u16, f64>) {
    let [head, sessions, couriers, drops_area] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(5),
        Constraint::Min(6),
        Constraint::Length(4),
    ])
    .areas(f.area());
    let title = format!(
        " octolink top: {} on {}   (q to quit) ",
        node.channel.node_id().short(),
        node.channel.local_addr()
    );
    let summary = format!(
        "in {} pkts / {} B   out {} pkts / {} B   handshakes {} ok, {} failed   RSA signatures {}",
        stats.received.packets,
        stats.received.bytes,
        stats.sent.packets,
        stats.sent.bytes,
        stats.handshakes_completed,
        stats.handshakes_failed,
        stats.rsa_signatures
    );
    f.render_widget(
        Paragraph::new(summary).block(Block::bordered().title(title)),
        head,
    );

    let rows = stats.sessions.iter().map(|s| {
        Row::new(vec![
            node.name_of(&s.peer),
            if s.connected { "up".into() } else { "down".into() },
            s.rtt.smoothed.map_or("-".into(), fmt_duration),
            s.rtt.min.map_or("-".into(), fmt_duration),
            format!("{:.2}%", s.loss_rate * 100.0),
            format!("{}", s.congestion_window),
            format!("{:.1} MB/s", s.send_rate as f64 / 1e6),
            format!("{}/{}", s.sent.packets, s.received.packets),
            if s.link_good { "good".into() } else { "bad".into() },
        ])
    });
    let widths = [Constraint::Length(12); 9];
    let table = Table::new(rows, widths)
        .header(Row::new([
            "peer",
            "state",
            "rtt",
            "min rtt",
            "loss",
            "cwnd",
            "pace",
            "pkts out/in",
            "link",
        ]))
        .block(Block::bordered().title(" sessions "));
    f.render_widget(table, sessions);

    let rows = stats.couriers.iter().map(|c| {
        Row::new(vec![
            format!("{:#06x}", c.id),
            format!("{}/{}", c.frames_sent, c.frames_received),
            format!("{}/{}", c.bytes_sent, c.bytes_received),
            format!("{:.1} kB/s", rates.get(&c.id).copied().unwrap_or(0.0) / 1e3),
            format!("{}", c.frames_delivered),
            format!("{}", c.frames_lost),
            format!("{}", c.queue_depth),
        ])
    });
    let table = Table::new(rows, [Constraint::Length(14); 7])
        .header(Row::new([
            "courier",
            "frames out/in",
            "bytes out/in",
            "bandwidth",
            "delivered",
            "lost",
            "queue",
        ]))
        .block(Block::bordered().title(" couriers "));
    f.render_widget(table, couriers);

    let drops: Vec<String> = stats.drops.nonzero().map(|(n, c)| format!("{n} {c}")).collect();
    let text = format!(
        "broken {}   hacked {}   {}",
        stats.broken(),
        stats.hacked(),
        if drops.is_empty() {
            "no drops".into()
        } else {
            drops.join("  ")
        }
    );
    f.render_widget(
        Paragraph::new(text).block(Block::bordered().title(" drops ")),
        drops_area,
    );
}
