//! Binding the UDP socket, with errors a person can act on.

use std::net::SocketAddr;

use super::ChannelError;

/// Binds a non-blocking UDP socket for mio and quinn-udp.
pub fn bind(addr: SocketAddr) -> Result<mio::net::UdpSocket, ChannelError> {
    let std_socket = std::net::UdpSocket::bind(addr).map_err(|source| match source.kind() {
        std::io::ErrorKind::AddrInUse => ChannelError::AddressInUse(addr),
        _ => ChannelError::Bind { addr, source },
    })?;
    std_socket.set_nonblocking(true)?;
    Ok(mio::net::UdpSocket::from_std(std_socket))
}
