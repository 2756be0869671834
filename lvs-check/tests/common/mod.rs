//! Small real servers for the checker tests: HTTP with chosen behaviours, and HTTPS (rustls with a
//! certificate made by rcgen). Each runs on its own threads until the process ends.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// What a test server does with each connection.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// `200 OK` with this body (and its Content-Length), then close.
    Ok(Vec<u8>),
    /// This status with a short body, then close.
    Status(u16),
    /// Accept, read the request, never answer (hold the connection).
    Hang,
    /// `200 OK`, then body bytes forever.
    Endless,
    /// `200 OK` with a body of this many bytes.
    Huge(usize),
    /// Answers whatever arrives first (say a TLS ClientHello) with a plain HTTP error, then closes.
    NotTls,
}

fn read_request(s: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn handle(mut s: TcpStream, b: &Behaviour) {
    if let Behaviour::NotTls = b {
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\nplain HTTP here\n");
        return;
    }
    read_request(&mut s);
    match b {
        Behaviour::Ok(body) => {
            let _ = write!(
                s,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(body);
        }
        Behaviour::Status(c) => {
            let _ = write!(s, "HTTP/1.0 {c} Status\r\n\r\nbusy\n");
        }
        Behaviour::Hang => std::thread::sleep(Duration::from_secs(30)),
        Behaviour::Endless => {
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\n\r\n");
            let chunk = [b'x'; 65536];
            while s.write_all(&chunk).is_ok() {}
        }
        Behaviour::NotTls => {}
        Behaviour::Huge(n) => {
            let _ = write!(s, "HTTP/1.0 200 OK\r\nContent-Length: {n}\r\n\r\n");
            let chunk = [b'y'; 65536];
            let mut left = *n;
            while left > 0 {
                let k = left.min(chunk.len());
                if s.write_all(&chunk[..k]).is_err() {
                    break;
                }
                left -= k;
            }
        }
    }
}

/// Listens on `addr` (port 0: any) in the current network namespace; returns the bound address.
pub fn serve(addr: &str, b: Behaviour) -> SocketAddr {
    let l = TcpListener::bind(addr).unwrap();
    let a = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let b = b.clone();
            std::thread::spawn(move || handle(s, &b));
        }
    });
    a
}

/// A TLS server configuration with a fresh self-signed certificate (rcgen).
pub fn tls_server_config() -> Arc<rustls::ServerConfig> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der], key)
            .unwrap(),
    )
}

/// An HTTPS server answering `200 OK` with `body`, with a self-signed certificate.
pub fn serve_tls(addr: &str, body: Vec<u8>) -> SocketAddr {
    let cfg = tls_server_config();
    let l = TcpListener::bind(addr).unwrap();
    let a = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let cfg = cfg.clone();
            let body = body.clone();
            std::thread::spawn(move || {
                let mut conn = rustls::ServerConnection::new(cfg).unwrap();
                let mut s = s;
                let mut tls = rustls::Stream::new(&mut conn, &mut s);
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(
                    tls,
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(&body);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    a
}
