//! A TCP fault proxy for the network-fault suite: sits on a free loopback
//! port between the host and a real server (Redis, moto) and, on command,
//! passes traffic, delays it, resets connections in the middle of a
//! request, or swallows it (a black hole that accepts and never answers).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does to traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    Pass,
    /// Forward everything, each chunk after this delay.
    Latency(Duration),
    /// Read what the client sends, then close every connection, old and new.
    Reset,
    /// Accept and read, never forward or answer.
    BlackHole,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    address: SocketAddr,
    fault: watch::Sender<Fault>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Proxies a free loopback port to `target`, passing traffic.
    pub async fn start(target: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port");
        let address = listener.local_addr().unwrap();
        let (fault, watching) = watch::channel(Fault::Pass);
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let tasks = tasks.clone();
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let watching = watching.clone();
                    let task = tokio::spawn(serve(client, target, watching));
                    let mut tasks = tasks.lock().unwrap();
                    tasks.retain(|t| !t.is_finished());
                    tasks.push(task);
                }
            })
        };
        FaultProxy {
            address,
            fault,
            tasks,
            accept,
        }
    }

    /// The proxy's own address (`127.0.0.1:port`).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Switches what the proxy does, for open and new connections.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// One client connection: copies both ways, applying the current fault to
/// every chunk.
async fn serve(client: TcpStream, target: SocketAddr, fault: watch::Receiver<Fault>) {
    if *fault.borrow() == Fault::Reset {
        return; // dropped: the client sees the connection closed
    }
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let upstream = pump(client_read, server_write, fault.clone());
    let downstream = pump(server_read, client_write, fault);
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut fault: watch::Receiver<Fault>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            // A switch to Reset closes connections that sit idle too.
            _ = fault.changed() => {
                if *fault.borrow() == Fault::Reset { return; }
                continue;
            }
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let current = *fault.borrow();
        match current {
            Fault::Pass => {}
            Fault::Latency(delay) => tokio::time::sleep(delay).await,
            Fault::Reset => return,
            Fault::BlackHole => continue,
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
