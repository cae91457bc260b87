//! The websocket transport of every relay client: nostr-sdk's default,
//! except that direct connections set `TCP_NODELAY` and (Linux) keep
//! `TCP_QUICKACK` armed, and try the relay's addresses Happy-Eyeballs style
//! (as the default transport does). A dispatch writes small frames back to
//! back on one connection (REQ, CLOSE, then EVENT): with Nagle's algorithm
//! the EVENT would wait for the relay's delayed ACK (~40 ms). A watch gets
//! the result a relay sends right after EOSE: without quick ACKs the relay's
//! Nagle holds it for our delayed ACK. Proxy and Tor connections use the
//! default transport.

use std::net::SocketAddr;
use std::time::Duration;

use nostr_sdk::prelude::*;

/// The delay between connection attempts to a relay's next address
/// (RFC 8305).
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Connect to the relay of `url`: its addresses (IPv6 and IPv4
/// interleaved) are tried [`ATTEMPT_DELAY`] apart, the first to answer
/// wins, so one dead route does not eat the caller's whole timeout.
async fn tcp_connect(url: &Url) -> std::io::Result<tokio::net::TcpStream> {
    use futures::StreamExt;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| std::io::Error::other("the relay URL has no port"))?;
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::from((ip, port))],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::from((ip, port))],
        Some(url::Host::Domain(d)) => tokio::net::lookup_host((d, port)).await?.collect(),
        None => return Err(std::io::Error::other("the relay URL has no host")),
    };
    let (v6, v4): (Vec<SocketAddr>, Vec<SocketAddr>) = addrs.into_iter().partition(|a| a.is_ipv6());
    let mut order = Vec::with_capacity(v6.len() + v4.len());
    let (mut v6, mut v4) = (v6.into_iter(), v4.into_iter());
    loop {
        match (v6.next(), v4.next()) {
            (None, None) => break,
            (a, b) => order.extend(a.into_iter().chain(b)),
        }
    }
    let mut next = order.into_iter();
    let mut pending = futures::stream::FuturesUnordered::new();
    let mut last = None;
    loop {
        // Nothing in flight (the last one failed): the next one at once.
        if pending.is_empty() {
            match next.next() {
                Some(addr) => pending.push(tokio::net::TcpStream::connect(addr)),
                None => break,
            }
        }
        tokio::select! {
            r = pending.next() => match r {
                Some(Ok(s)) => return Ok(s),
                Some(Err(e)) => last = Some(e),
                None => {}
            },
            _ = tokio::time::sleep(ATTEMPT_DELAY), if next.len() > 0 => {
                if let Some(addr) = next.next() {
                    pending.push(tokio::net::TcpStream::connect(addr));
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the relay's host has no address")))
}

/// How much a relay connection reads at once: tungstenite's default
/// buffer (128 KiB) is zeroed before every read, which is most of the
/// memory a short command touches (three relays: 384 KiB, a quarter of a
/// dispatch's page faults) and a memset per message. Relay messages are a
/// few KiB; a bigger frame still arrives whole (the buffer grows for it).
const READ_BUFFER: usize = 16 * 1024;

fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
}

/// The websocket transport of every client: the default one, except that
/// direct connections set `TCP_NODELAY`. A dispatch writes small frames
/// back to back on one connection (REQ, CLOSE, then EVENT); with Nagle's
/// algorithm the EVENT would wait for the relay's delayed ACK (~40 ms).
#[derive(Debug, Clone, Copy)]
pub struct NoDelayTransport;

/// A relay's TCP stream that re-arms `TCP_QUICKACK` after every read
/// (Linux): a relay that sends EOSE and then, right after, an event holds
/// the event back (Nagle, on its side) until the EOSE is acknowledged, and
/// a client with nothing to send delays that ACK by ~40 ms. `watch` waits
/// for exactly such an event. The option is per socket; it is set through
/// a duplicate of the descriptor.
struct QuickAck {
    tcp: tokio::net::TcpStream,
    #[cfg(target_os = "linux")]
    dup: Option<std::net::TcpStream>,
}

impl QuickAck {
    fn new(tcp: tokio::net::TcpStream) -> std::io::Result<QuickAck> {
        #[cfg(target_os = "linux")]
        {
            let std = tcp.into_std()?;
            // Best effort: without the duplicate the stream just has
            // delayed ACKs, as by default.
            let dup = std.try_clone().ok();
            let tcp = tokio::net::TcpStream::from_std(std)?;
            let q = QuickAck { tcp, dup };
            q.rearm();
            Ok(q)
        }
        #[cfg(not(target_os = "linux"))]
        Ok(QuickAck { tcp })
    }

    fn rearm(&self) {
        #[cfg(target_os = "linux")]
        if let Some(d) = &self.dup {
            use std::os::linux::net::TcpStreamExt;
            let _ = d.set_quickack(true);
        }
    }
}

impl tokio::io::AsyncRead for QuickAck {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let r = std::pin::Pin::new(&mut self.tcp).poll_read(cx, buf);
        if matches!(r, std::task::Poll::Ready(Ok(()))) {
            self.rearm();
        }
        r
    }
}

impl tokio::io::AsyncWrite for QuickAck {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<QuickAck>>;
type WsMessage = tokio_tungstenite::tungstenite::Message;

/// A websocket message as the relay pool takes it (`None`: a raw frame,
/// which a reader never gets).
fn to_pool(m: WsMessage) -> Option<async_wsocket::Message> {
    use async_wsocket::Message as M;
    Some(match m {
        WsMessage::Text(t) => M::Text(t.to_string()),
        WsMessage::Binary(b) => M::Binary(b.to_vec()),
        WsMessage::Ping(b) => M::Ping(b.to_vec()),
        WsMessage::Pong(b) => M::Pong(b.to_vec()),
        WsMessage::Close(f) => M::Close(f.map(Into::into)),
        WsMessage::Frame(_) => return None,
    })
}

/// The sink half of a websocket, its errors turned into transport errors.
struct NoDelaySink(futures::stream::SplitSink<Socket, WsMessage>);

impl futures::Sink<async_wsocket::Message> for NoDelaySink {
    type Error = nostr_sdk::pool::transport::error::TransportError;

    fn poll_ready(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::result::Result<(), Self::Error>> {
        std::pin::Pin::new(&mut self.0)
            .poll_ready(cx)
            .map_err(Self::Error::backend)
    }

    fn start_send(
        mut self: std::pin::Pin<&mut Self>,
        item: async_wsocket::Message,
    ) -> std::result::Result<(), Self::Error> {
        std::pin::Pin::new(&mut self.0)
            .start_send(item.into())
            .map_err(Self::Error::backend)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::result::Result<(), Self::Error>> {
        std::pin::Pin::new(&mut self.0)
            .poll_flush(cx)
            .map_err(Self::Error::backend)
    }

    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::result::Result<(), Self::Error>> {
        std::pin::Pin::new(&mut self.0)
            .poll_close(cx)
            .map_err(Self::Error::backend)
    }
}

impl nostr_sdk::pool::transport::websocket::WebSocketTransport for NoDelayTransport {
    fn support_ping(&self) -> bool {
        true
    }

    fn connect<'a>(
        &'a self,
        url: &'a Url,
        mode: &'a nostr_sdk::pool::ConnectionMode,
        timeout: Duration,
    ) -> BoxedFuture<
        'a,
        std::result::Result<
            (
                nostr_sdk::pool::transport::websocket::WebSocketSink,
                nostr_sdk::pool::transport::websocket::WebSocketStream,
            ),
            nostr_sdk::pool::transport::error::TransportError,
        >,
    > {
        use futures::{StreamExt, TryStreamExt};
        use nostr_sdk::pool::transport::error::TransportError;
        use nostr_sdk::pool::transport::websocket::{
            DefaultWebsocketTransport, WebSocketSink, WebSocketStream,
        };
        Box::pin(async move {
            if !matches!(mode, nostr_sdk::pool::ConnectionMode::Direct) {
                return DefaultWebsocketTransport.connect(url, mode, timeout).await;
            }
            let open = async {
                let tcp = tcp_connect(url).await?;
                tcp.set_nodelay(true)?;
                let tcp = QuickAck::new(tcp)?;
                let (ws, _) = tokio_tungstenite::client_async_tls_with_config(
                    url.as_str(),
                    tcp,
                    Some(ws_config()),
                    None,
                )
                .await
                .map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>(ws)
            };
            let ws = tokio::time::timeout(timeout, open)
                .await
                .map_err(|_| {
                    TransportError::backend(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "timeout",
                    ))
                })?
                .map_err(TransportError::backend)?;
            let (tx, rx) = ws.split();
            let sink: WebSocketSink = Box::new(NoDelaySink(tx));
            let rx = rx.filter_map(|m| futures::future::ready(m.map(to_pool).transpose()));
            let stream: WebSocketStream = Box::pin(rx.map_err(TransportError::backend));
            Ok((sink, stream))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connects_by_address_or_name_and_reports_refusal() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = l.local_addr().expect("addr").port();
        for u in [
            format!("ws://127.0.0.1:{port}"),
            format!("ws://localhost:{port}/"),
        ] {
            let url = Url::parse(&u).expect("url");
            // `localhost` may name ::1 first, where nothing listens: the
            // refusal moves on to 127.0.0.1.
            let s = tcp_connect(&url).await.expect("connect");
            assert_eq!(s.peer_addr().expect("peer").port(), port);
        }
        drop(l);
        let url = Url::parse(&format!("ws://127.0.0.1:{port}")).expect("url");
        assert!(tcp_connect(&url).await.is_err());
    }
}
