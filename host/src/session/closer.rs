//! The one place the host ends a connection for good: it leaves this node's client
//! table and its close sequence runs (`mswoole_core::close`: `onClose` of the
//! controllers it registered, then it leaves its close-key sets, then its identity
//! records go; README.md "The protocol in brief").
//!
//! A connection's task calls it when its socket ends. Nothing else runs a close
//! sequence for a connection of this node; the Redis registry releases the
//! connections of a dead node with the same `release` step, without hooks. A
//! connection that moved here from the node its fd names is announced gone, so the
//! other nodes forget where it lived.

use std::sync::Arc;

use mswoole_core::close::close_sequence;

use crate::{
    cluster::handover,
    fanout::clients::Clients,
    identity::{node_of, Identity},
    plugins::Plugins,
    registry::Registry,
};

/// Ends connections.
pub struct Closer {
    /// This node's id.
    node: String,
    /// This node's connections.
    clients: Arc<Clients>,
    /// Where the connection's records are.
    registry: Arc<dyn Registry>,
    /// Whose `onClose` hooks run.
    plugins: Arc<Plugins>,
    /// `protocol.escape_html`: how `onClose` sees the identity.
    escape: bool,
}

impl Closer {
    /// A closer over these parts.
    pub fn new(
        node: String,
        clients: Arc<Clients>,
        registry: Arc<dyn Registry>,
        plugins: Arc<Plugins>,
        escape: bool,
    ) -> Self {
        Closer {
            node,
            clients,
            registry,
            plugins,
            escape,
        }
    }

    /// Ends `identity`'s connection: no frame reaches it any more, then its close sequence runs.
    pub async fn end(&self, identity: &Identity) {
        self.clients.remove(&identity.fd);
        close_sequence(&*self.registry, &*self.plugins, identity, self.escape).await;
        if node_of(&identity.fd).is_some_and(|born| born != self.node) {
            handover::announce_ended(&*self.registry, &identity.fd).await;
        }
    }
}
