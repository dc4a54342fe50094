//! Raw HTTP from chosen source addresses: the attacks of the hostile benchmark speak HTTP by
//! hand (a client library would finish the bodies they leave unfinished) and from loopback
//! addresses of their own, so the server sees many clients, as it would on a network.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The attackers' addresses: `count` hosts of one /24 (`127.0.<net>.2…`), or, `spread`, one
/// host in each of `count` /24s (`127.0.<net + i>.2`).
pub fn addresses(net: u8, count: usize, spread: bool) -> Vec<IpAddr> {
    (0..count)
        .map(|i| {
            let (third, fourth) = if spread {
                (net.wrapping_add(i as u8), 2)
            } else {
                (net, 2 + (i % 250) as u8)
            };
            IpAddr::V4(Ipv4Addr::new(127, 0, third, fourth))
        })
        .collect()
}

/// A TCP connection to `server` from `source`.
pub async fn connect_from(source: IpAddr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(server).await
}

/// The head of a request with these headers and a declared body length.
pub fn head(
    method: &str,
    path: &str,
    server: SocketAddr,
    headers: &[(&str, &str)],
    body_len: Option<usize>,
) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {server}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(n) = body_len {
        head.push_str(&format!("Content-Length: {n}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// The status of the response on `stream`, reading until its first line (or `wait` passes:
/// `None`). A closed connection without an answer is status 0.
pub async fn read_status(stream: &mut TcpStream, wait: Duration) -> Option<u16> {
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    let read = async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Some(0),
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.iter().position(|b| *b == b'\n') {
                        let line = String::from_utf8_lossy(&buf[..end]);
                        return line.split_whitespace().nth(1).and_then(|s| s.parse().ok());
                    }
                }
            }
        }
    };
    tokio::time::timeout(wait, read).await.ok().flatten()
}

/// Sends a whole request from `source` and returns the status (0 when the connection failed or
/// closed unanswered).
pub async fn request(
    source: IpAddr,
    server: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    wait: Duration,
) -> u16 {
    let Ok(mut stream) = connect_from(source, server).await else {
        return 0;
    };
    let mut bytes = head(method, path, server, headers, Some(body.len()));
    bytes.extend_from_slice(body);
    if stream.write_all(&bytes).await.is_err() {
        return read_status(&mut stream, Duration::from_millis(100))
            .await
            .unwrap_or(0);
    }
    read_status(&mut stream, wait).await.unwrap_or(0)
}
