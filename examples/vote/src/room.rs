//! Live's room sets, and sending to them.
//!
//! The Live module keeps who is in a room in the registry: `LIVE_USER_ROOM_<code>`
//! (phone users who joined with `live.user.join`) and `LIVE_WALL_ROOM_<code>` (big
//! screens, `live.wall.join`). Vote only reads them: casting needs no join, but only
//! members get broadcasts.

use mswoole_plugin_api::{Envelope, Host, HostError};

/// The big screens of room `code`.
pub fn walls_key(code: &str) -> String {
    format!("LIVE_WALL_ROOM_{code}")
}

/// The phone users of room `code`.
pub fn users_key(code: &str) -> String {
    format!("LIVE_USER_ROOM_{code}")
}

/// Sends `envelope` to every big screen of room `code`; returns how many it reached.
pub async fn to_walls(host: &Host, code: &str, envelope: Envelope) -> Result<u64, HostError> {
    host.send_to_set(&walls_key(code), envelope).await
}

/// Sends `envelope` to every big screen and every phone user of room `code`.
pub async fn to_everyone(host: &Host, code: &str, envelope: Envelope) -> Result<u64, HostError> {
    let walls = host.send_to_set(&walls_key(code), envelope.clone()).await?;
    let users = host.send_to_set(&users_key(code), envelope).await?;
    Ok(walls + users)
}
