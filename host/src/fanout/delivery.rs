//! Gets a frame to connections wherever they are: this node's outbound queues, or
//! another node through the registry's relay.
//!
//! The one path of a frame for an fd, in both directions: modules (through the host
//! API's outlet) and the manager send through [`Delivery`], and what other nodes relay
//! to this one comes back in through it too ([`Arrivals`]), so only this file hands
//! frames and close requests to [`Clients`]. An fd names the node it was born on, which
//! is where it lives unless its resumable session moved (README.md, "Resumable sessions"):
//! then the client table notes where it went, and frames go there.

use std::{collections::BTreeMap, sync::Arc};

use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::{
    cluster::Arrivals,
    fanout::clients::Clients,
    identity::node_of,
    registry::{Registry, RegistryError},
};

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
    /// This node's id.
    node: String,
    /// This node's connections.
    clients: Arc<Clients>,
    /// The relay to other nodes.
    registry: Arc<dyn Registry>,
}

impl Delivery {
    /// Delivery for `node`.
    pub fn new(node: String, clients: Arc<Clients>, registry: Arc<dyn Registry>) -> Self {
        Delivery {
            node,
            clients,
            registry,
        }
    }

    /// The other node an fd not held here lives on: where it moved (`away`), else where
    /// it was born; `None` when that is this node (it is gone).
    fn elsewhere<'a>(&self, fd: &'a str, away: Option<&'a str>) -> Option<&'a str> {
        away.or_else(|| node_of(fd))
            .filter(|node| *node != self.node)
    }

    /// Sends a frame to each fd, local or remote.
    pub async fn to_fds(&self, fds: &[String], text: &Utf8Bytes) -> Result<Reach, RegistryError> {
        let mut remote: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let local = self
            .clients
            .send_many(fds.iter().map(String::as_str), text, |fd, away| {
                if let Some(node) = self.elsewhere(fd, away) {
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
        let local = self.clients.send_all(text);
        let nodes = self.registry.publish_to_all(text.as_str()).await?;
        Ok(Reach {
            local,
            nodes,
            relayed: 0,
        })
    }

    /// Closes a connection on whatever node holds it; `true` if it was found or relayed.
    pub async fn close(&self, fd: &str) -> Result<bool, RegistryError> {
        if self.clients.close(fd) {
            return Ok(true);
        }
        let away = self.clients.away(fd);
        match self.elsewhere(fd, away.as_deref()) {
            Some(node) => self.registry.close_on_node(node, fd).await,
            None => Ok(false),
        }
    }
}

/// What other nodes relay to this one, delivered to this node's connections.
impl Arrivals for Delivery {
    fn to_fds(&self, fds: &[String], text: &Utf8Bytes) -> Vec<(String, Vec<String>)> {
        let mut away: BTreeMap<String, Vec<String>> = BTreeMap::new();
        self.clients
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
        self.clients.send_all(text);
    }

    fn close(&self, fd: &str) -> Option<String> {
        match self.clients.close(fd) {
            true => None,
            false => self.clients.away(fd),
        }
    }
}
