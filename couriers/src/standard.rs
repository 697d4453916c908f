//! The standard couriers on a running [`CommsChannel`], one call away.
//!
//! They use octolink's reserved courier ids, so any two nodes that install
//! them understand each other.

use std::path::Path;
use std::time::Duration;

use octolink::driver::{ChannelError, CommsChannel};
use octolink::stream::PushError;
use octolink::{CourierHandle, CourierId, CourierScope, NodeId};

use crate::blob::BlobConfig;
use crate::{AgentState, AgentStateConfig, BlobCourier, BlobEvent, Command, CommandCourier, CommandEvent};

pub const AGENT_STATE_ID: CourierId = CourierId(0xff01);
pub const COMMAND_ID: CourierId = CourierId(0xff02);
pub const BLOB_ID: CourierId = CourierId(0xff03);

/// Errors from the standard couriers' conveniences.
#[derive(Debug, thiserror::Error)]
pub enum StandardError {
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Push(#[from] PushError),
    #[error(transparent)]
    Blob(#[from] crate::blob::BlobError),
}

/// The standard couriers for one peer.
///
/// ```no_run
/// # use octolink::driver::CommsChannel;
/// # use octolink_couriers::{AgentState, standard::StandardCouriers, blob::BlobConfig};
/// # fn f(channel: &CommsChannel, robot: octolink::NodeId) -> Result<(), Box<dyn std::error::Error>> {
/// let state = AgentState::new(channel.node_id());
/// state.define(1, "speed", 200, &0.0f32)?;
/// let robot_couriers = StandardCouriers::install(channel, robot, &state, BlobConfig::default())?;
/// robot_couriers.send_command(channel, b"stop".to_vec(), None)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct StandardCouriers {
    pub peer: NodeId,
    pub agent_state: CourierHandle,
    pub command: CourierHandle,
    pub blob: CourierHandle,
}

impl StandardCouriers {
    /// Registers AgentState (over `state`), Command and Blob couriers for
    /// `peer`.
    pub fn install(
        channel: &CommsChannel,
        peer: NodeId,
        state: &AgentState,
        blob: BlobConfig,
    ) -> Result<Self, ChannelError> {
        let scope = CourierScope::Peer(peer);
        let agent_state = channel.register_courier(
            scope,
            AGENT_STATE_ID,
            Box::new(state.courier(peer, AgentStateConfig::default())),
        )?;
        let command = channel.register_courier(scope, COMMAND_ID, Box::new(CommandCourier::new()))?;
        let blob = channel.register_courier(scope, BLOB_ID, Box::new(BlobCourier::new(blob)))?;
        Ok(Self {
            peer,
            agent_state,
            command,
            blob,
        })
    }

    /// Sends a command; returns its id for [`CommandEvent`]s.
    pub fn send_command(
        &self,
        channel: &CommsChannel,
        body: Vec<u8>,
        lifespan: Option<Duration>,
    ) -> Result<u64, StandardError> {
        Ok(channel
            .with_courier::<CommandCourier, _>(self.command, move |c, now| c.send(now, body, lifespan))??)
    }

    /// Commands received so far, in order.
    pub fn take_commands(&self, channel: &CommsChannel) -> Result<Vec<Command>, ChannelError> {
        channel
            .with_courier::<CommandCourier, _>(self.command, |c, _| std::iter::from_fn(|| c.recv()).collect())
    }

    /// What became of commands sent.
    pub fn take_command_events(&self, channel: &CommsChannel) -> Result<Vec<CommandEvent>, ChannelError> {
        channel.with_courier::<CommandCourier, _>(self.command, |c, _| {
            std::iter::from_fn(|| c.poll_event()).collect()
        })
    }

    /// Offers a file; returns the blob id.
    pub fn send_file(&self, channel: &CommsChannel, path: &Path, priority: u8) -> Result<u64, StandardError> {
        let path = path.to_path_buf();
        Ok(channel
            .with_courier::<BlobCourier, _>(self.blob, move |c, now| c.send_file(now, &path, priority))??)
    }

    /// Blob events so far.
    pub fn take_blob_events(&self, channel: &CommsChannel) -> Result<Vec<BlobEvent>, ChannelError> {
        channel
            .with_courier::<BlobCourier, _>(self.blob, |c, _| std::iter::from_fn(|| c.poll_event()).collect())
    }
}
