//! Gets a frame to connections wherever they are: this node's outbound queues, or
//! another node through the registry's relay.
//!
//! The one path of a frame for an fd, in both directions: modules (through the host
//! API's outlet) and the manager send through [`Delivery`], and what other nodes relay
//! to this one comes back in through it too ([`Arrivals`]), so only this file hands
//! frames and close requests to this node's connections. Where an fd lives is
//! [`Locations`]' answer: here, behind its queue, or on the node it was born on or moved
//! to (README.md, "Resumable sessions").

use std::{collections::BTreeMap, sync::Arc};

use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::{
    engine::end::CloseRequest,
    fanout::locations::Locations,
    registry::{Registry, RegistryError},
};

/// Where what other nodes relay to this one goes: frame delivery
/// ([`Delivery`]), the one path by which a frame reaches a local fd; the relay between
/// nodes (`crate::cluster::redis`) hands what it receives here.
pub trait Arrivals: Send + Sync {
    /// Frames for these fds, if they live here; returns those that moved from here to
    /// another node, by node, for the relay to send on.
    fn to_fds(&self, fds: &[String], text: &Utf8Bytes) -> Vec<(String, Vec<String>)>;
    /// A frame for every connection of this node.
    fn to_all(&self, text: &Utf8Bytes);
    /// Closes one of this node's connections (1000), as a module's `close` does; returns
    /// the node it moved to instead, if it did, for the relay to send the request on.
    fn close(&self, fd: &str) -> Option<String>;
}

/// How far a frame went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reach {
    /// Connections of this node it was queued for.
    pub local: u64,
    /// Other nodes it was relayed to.
    pub nodes: u64,
    /// Connections of other nodes it was relayed for.
    pub relayed: u64,
}

/// Delivery to fds on any node.
pub struct Delivery {
    /// Where fds live.
    locations: Arc<Locations>,
    /// The relay to other nodes.
    registry: Arc<dyn Registry>,
}

impl Delivery {
    /// Delivery through `locations`, relaying through `registry`.
    pub fn new(locations: Arc<Locations>, registry: Arc<dyn Registry>) -> Self {
        Delivery {
            locations,
            registry,
        }
    }

    /// Sends a frame to each fd, local or remote.
    pub async fn to_fds(&self, fds: &[String], text: &Utf8Bytes) -> Result<Reach, RegistryError> {
        let mut remote: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let locations = &self.locations;
        let local = locations.send_many(fds.iter().map(String::as_str), text, |fd, away| {
            if let Some(node) = locations.elsewhere(fd, away) {
                remote
                    .entry(node.to_string())
                    .or_default()
                    .push(fd.to_string());
            }
        });
        let mut reach = Reach {
            local,
            ..Reach::default()
        };
        for (node, fds) in remote {
            if self
                .registry
                .publish_to_node(&node, &fds, text.as_str())
                .await?
            {
                reach.nodes += 1;
                reach.relayed += fds.len() as u64;
            }
        }
        Ok(reach)
    }

    /// Sends a frame to every connection of every node.
    pub async fn to_all(&self, text: &Utf8Bytes) -> Result<Reach, RegistryError> {
        let local = self.locations.send_all(text);
        let nodes = self.registry.publish_to_all(text.as_str()).await?;
        Ok(Reach {
            local,
            nodes,
            relayed: 0,
        })
    }

    /// Closes a connection on whatever node holds it; `true` if it was found or relayed.
    pub async fn close(&self, fd: &str) -> Result<bool, RegistryError> {
        if self.locations.close(fd, CloseRequest::Kick) {
            return Ok(true);
        }
        let away = self.locations.away(fd);
        match self.locations.elsewhere(fd, away.as_deref()) {
            Some(node) => self.registry.close_on_node(node, fd).await,
            None => Ok(false),
        }
    }
}

/// What other nodes relay to this one, delivered to this node's connections.
impl Arrivals for Delivery {
    fn to_fds(&self, fds: &[String], text: &Utf8Bytes) -> Vec<(String, Vec<String>)> {
        let mut away: BTreeMap<String, Vec<String>> = BTreeMap::new();
        self.locations
            .send_many(fds.iter().map(String::as_str), text, |fd, node| {
                if let Some(node) = node {
                    away.entry(node.to_string())
                        .or_default()
                        .push(fd.to_string());
                }
            });
        away.into_iter().collect()
    }

    fn to_all(&self, text: &Utf8Bytes) {
        self.locations.send_all(text);
    }

    fn close(&self, fd: &str) -> Option<String> {
        match self.locations.close(fd, CloseRequest::Kick) {
            true => None,
            false => self.locations.away(fd),
        }
    }
}
