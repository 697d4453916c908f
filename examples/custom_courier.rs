//! A courier of your own: a joystick sending its latest position 50 times a
//! second (latest value wins), and a robot reading it. Two nodes in one
//! process over loopback.

use std::time::{Duration, Instant};

use octolink::driver::{ChannelConfig, CommsChannel};
use octolink::sim::fixture_identity;
use octolink::{
    Courier, CourierContext, CourierId, CourierScope, Event, Mandate, NodeAssociate, PayloadWriter, Role,
};

const JOYSTICK: CourierId = CourierId(42);

#[derive(Default)]
struct Joystick {
    /// Latest (x, y) to send, or the latest received.
    position: (i16, i16),
    next_send: Option<Instant>,
    received: u32,
}

impl Courier for Joystick {
    fn mandate(&self) -> Mandate {
        Mandate {
            priority: 220,
            next_send: self.next_send,
            send_slack: Duration::ZERO,
            max_payload: 4,
            min_payload: 4,
            send_active: self.next_send.is_some(),
            receive_active: true,
        }
    }

    fn on_send_opportunity(&mut self, ctx: &CourierContext, out: &mut PayloadWriter<'_>) {
        let (x, y) = self.position;
        if out.write(&[x.to_be_bytes(), y.to_be_bytes()].concat()).is_ok() {
            self.next_send = Some(ctx.now + Duration::from_millis(20));
        }
    }

    fn on_receive(&mut self, _ctx: &CourierContext, payload: &[u8]) {
        // Untrusted input, even from a trusted peer: check the length.
        if let [a, b, c, d] = *payload {
            self.position = (i16::from_be_bytes([a, b]), i16::from_be_bytes([c, d]));
            self.received += 1;
        }
    }
}

fn node(name: &str, other: &str) -> Result<CommsChannel, Box<dyn std::error::Error>> {
    let mut cfg = ChannelConfig::new("127.0.0.1:0".parse()?, fixture_identity(name));
    cfg.trust.insert(NodeAssociate::new(
        fixture_identity(other).public().clone(),
        other,
        Role::Agent,
    ))?;
    Ok(CommsChannel::start(cfg)?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (app, robot) = (node("a", "b")?, node("b", "a")?);
    app.add_associate(
        NodeAssociate::new(fixture_identity("b").public().clone(), "robot", Role::Agent)
            .with_address(robot.local_addr()),
    )?;
    let stick = Joystick {
        next_send: Some(Instant::now()),
        ..Joystick::default()
    };
    let h_app = app.register_courier(CourierScope::Peer(robot.node_id()), JOYSTICK, Box::new(stick))?;
    let h_robot = robot.register_courier(
        CourierScope::Peer(app.node_id()),
        JOYSTICK,
        Box::new(Joystick::default()),
    )?;
    app.connect(robot.node_id())?;
    app.wait_for(Duration::from_secs(5), |e| matches!(e, Event::Connected { .. }))
        .ok_or("no session")?;

    for step in 0..10i16 {
        app.with_courier::<Joystick, _>(h_app, move |j, _| j.position = (step * 100, -step * 50))?;
        std::thread::sleep(Duration::from_millis(100));
        let (pos, n) = robot.with_courier::<Joystick, _>(h_robot, |j, _| (j.position, j.received))?;
        println!("robot sees joystick at {pos:?} ({n} updates so far)");
    }
    Ok(())
}
