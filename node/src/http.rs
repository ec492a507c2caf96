//! The HTTP API's listener: at most [`HTTP_CONNECTIONS_MAX`] connections
//! at once (more wait in the kernel's backlog until one closes), and a
//! connection on which nothing is read or written for
//! [`HTTP_IDLE_TIMEOUT`] is closed, so that slow or stalled clients cannot
//! hold the node's connections forever.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Connections served at once.
pub const HTTP_CONNECTIONS_MAX: usize = 256;
/// A connection idle this long (no byte read or written) is closed.
pub const HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A TCP listener that caps and times out its connections.
pub struct CappedListener {
    inner: TcpListener,
    places: Arc<Semaphore>,
    idle: Duration,
    /// Connections closed for idling.
    pub idled: Arc<AtomicU64>,
}

impl CappedListener {
    /// Wraps `inner` with the default cap and idle timeout.
    pub fn new(inner: TcpListener) -> CappedListener {
        CappedListener::with_limits(inner, HTTP_CONNECTIONS_MAX, HTTP_IDLE_TIMEOUT)
    }

    /// Wraps `inner` with these limits.
    pub fn with_limits(inner: TcpListener, connections: usize, idle: Duration) -> CappedListener {
        CappedListener {
            inner,
            places: Arc::new(Semaphore::new(connections)),
            idle,
            idled: Arc::default(),
        }
    }
}

impl axum::serve::Listener for CappedListener {
    type Io = Capped;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Capped, SocketAddr) {
        loop {
            // Wait for a free place before taking a connection off the
            // backlog; the semaphore is never closed.
            let Ok(place) = Arc::clone(&self.places).acquire_owned().await else {
                continue;
            };
            match self.inner.accept().await {
                Ok((stream, address)) => {
                    let _ = stream.set_nodelay(true);
                    return (
                        Capped {
                            stream,
                            _place: place,
                            idle: self.idle,
                            deadline: Box::pin(tokio::time::sleep(self.idle)),
                            idled: Arc::clone(&self.idled),
                        },
                        address,
                    );
                }
                Err(error) => {
                    // Out of file descriptors and the like: wait, as axum's
                    // own listener does, rather than spin.
                    tracing::warn!("HTTP accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// One capped connection: holds its place until dropped, and fails its
/// reads and writes once idle for too long.
pub struct Capped {
    stream: TcpStream,
    _place: OwnedSemaphorePermit,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    idled: Arc<AtomicU64>,
}

impl Capped {
    fn progressed(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.idle);
    }

    fn check_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.idled.fetch_add(1, Ordering::Relaxed);
                Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "HTTP connection idle for too long",
                ))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Capped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => this.check_idle(cx).map(Err),
        }
    }
}

impl AsyncWrite for Capped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_write(cx, buf) {
            Poll::Ready(result) => {
                this.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => this.check_idle(cx).map(Err),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn serve(connections: usize, idle: Duration) -> (SocketAddr, Arc<AtomicU64>) {
        let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listener = CappedListener::with_limits(inner, connections, idle);
        let idled = Arc::clone(&listener.idled);
        let address = axum::serve::Listener::local_addr(&listener).unwrap();
        let router = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        (address, idled)
    }

    async fn get(address: SocketAddr) -> String {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    // A client that connects and sends nothing is cut off after the idle
    // timeout instead of holding its place; requests go on being served.
    #[tokio::test]
    async fn an_idle_connection_is_closed_and_others_are_served() {
        let (address, idled) = serve(1, Duration::from_millis(300)).await;
        let mut silent = TcpStream::connect(address).await.unwrap();
        // The one place is taken: a request waits until the silent one is
        // closed for idling, then is answered.
        let answer = tokio::time::timeout(Duration::from_secs(20), get(address))
            .await
            .expect("served once the idle connection was closed");
        assert!(answer.contains("200 OK"), "{answer}");
        let mut rest = Vec::new();
        let closed = silent.read_to_end(&mut rest).await;
        assert!(closed.is_err() || rest.is_empty());
        assert!(idled.load(Ordering::Relaxed) >= 1);
    }
}
