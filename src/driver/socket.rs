//! Binding the UDP socket, with errors a person can act on.

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

use super::ChannelError;

/// Binds a non-blocking UDP socket for mio and quinn-udp, asking the kernel
/// for `buffer` bytes of send and receive buffer. The kernel caps the
/// request (`net.core.rmem_max` / `wmem_max`) without failing; a refusal is
/// logged, not fatal, since the default buffers still work, only with more
/// drops under bursts.
pub fn bind(addr: SocketAddr, buffer: usize) -> Result<mio::net::UdpSocket, ChannelError> {
    let bind_error = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::AddrInUse => ChannelError::AddressInUse(addr),
        _ => ChannelError::Bind { addr, source },
    };
    let socket =
        Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).map_err(bind_error)?;
    if buffer > 0 {
        for (what, result) in [
            ("receive", socket.set_recv_buffer_size(buffer)),
            ("send", socket.set_send_buffer_size(buffer)),
        ] {
            if let Err(e) = result {
                tracing::warn!(error = %e, bytes = buffer, "cannot size the socket's {what} buffer");
            }
        }
    }
    socket.bind(&addr.into()).map_err(bind_error)?;
    socket.set_nonblocking(true)?;
    Ok(mio::net::UdpSocket::from_std(socket.into()))
}
