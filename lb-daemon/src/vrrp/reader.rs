//! The socket reader: one task per instance, so that waiting for a packet
//! never holds up the driver. Our own adverts and, in unicast mode,
//! packets from strangers are dropped here; the rest go to the driver
//! tagged with the member they are for.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::driver::Input;
use super::member::MemberId;
use super::network::{ErrorLog, VrrpSocket};

/// How long to wait after a receive error before reading again, so that
/// a socket that keeps failing does not spin.
const ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Reads packets for member `id` until the driver goes away.
pub async fn read_loop(
    id: MemberId,
    socket: Arc<VrrpSocket>,
    peers: Vec<IpAddr>,
    tx: mpsc::Sender<Input>,
) {
    let own = socket.src();
    let mut errors = ErrorLog::default();
    loop {
        match socket.recv().await {
            Ok(r) => {
                if r.src == own {
                    continue;
                }
                if !peers.is_empty() && !peers.contains(&r.src) {
                    debug!(src = %r.src, "advert from an address that is not a unicast_peer");
                    continue;
                }
                if tx.send(Input::Packet(id, r)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                if errors.due() {
                    warn!("receiving: {e}");
                }
                tokio::time::sleep(ERROR_PAUSE).await;
            }
        }
    }
}
