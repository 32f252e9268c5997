//! Raw sockets for tests that must misbehave: requests written by hand, bodies sent a piece
//! at a time, WebSocket frames with any header, and the node's memory read from `/proc`.

use super::{Node, WAIT};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 connection written by hand.
pub struct RawConn {
    pub stream: TcpStream,
    /// Bytes read past the last response.
    buffered: Vec<u8>,
    /// The last request was a HEAD: its response has no body whatever it says.
    bodiless: bool,
}

/// A response as a test reads it.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

impl RawConn {
    pub async fn open(node: &Node) -> RawConn {
        let stream = TcpStream::connect(("127.0.0.1", node.port))
            .await
            .expect("connect to the node");
        RawConn::from_stream(stream)
    }

    pub fn from_stream(stream: TcpStream) -> RawConn {
        stream.set_nodelay(true).expect("nodelay");
        RawConn {
            stream,
            buffered: Vec::new(),
            bodiless: false,
        }
    }

    /// Writes bytes; false once the node has closed the connection.
    pub async fn write(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    /// Writes a request head; `headers` are whole lines without the line ending.
    pub async fn head(&mut self, method: &str, path: &str, headers: &[String]) {
        self.bodiless = method == "HEAD";
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for line in headers {
            head.push_str(line);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        assert!(self.write(head.as_bytes()).await, "write a request head");
    }

    /// Reads one response within `within`; `None` if none came (or the node closed first).
    pub async fn response_within(&mut self, within: Duration) -> Option<RawResponse> {
        tokio::time::timeout(within, self.read_response())
            .await
            .ok()
            .flatten()
    }

    pub async fn response(&mut self) -> RawResponse {
        self.response_within(WAIT)
            .await
            .expect("a response from the node")
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buffered.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    async fn read_response(&mut self) -> Option<RawResponse> {
        let end = loop {
            if let Some(end) = find(&self.buffered, b"\r\n\r\n") {
                break end;
            }
            if !self.fill().await {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buffered[..end]).into_owned();
        self.buffered.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let length = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .filter(|_| !self.bodiless)
            .unwrap_or(0);
        while self.buffered.len() < length {
            if !self.fill().await {
                return None;
            }
        }
        let body = self.buffered.drain(..length).collect();
        Some(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// True when the node closes the connection within `within`.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let mut chunk = [0u8; 64 * 1024];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Asks to upgrade to a WebSocket; the handshake's status (101 when it upgraded).
    pub async fn try_upgrade(node: &Node) -> (RawConn, u16) {
        RawConn::upgrade_with(node, &[]).await
    }

    /// Asks to upgrade with `extra` header lines besides the WebSocket ones.
    pub async fn upgrade_with(node: &Node, extra: &[String]) -> (RawConn, u16) {
        let mut conn = RawConn::open(node).await;
        let mut headers: Vec<String> = vec![
            "Upgrade: websocket".into(),
            "Connection: Upgrade".into(),
            "Sec-WebSocket-Version: 13".into(),
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==".into(),
        ];
        headers.extend_from_slice(extra);
        conn.head("GET", "/ws", &headers).await;
        let status = conn.response().await.status;
        (conn, status)
    }

    /// Upgrades a new connection to a WebSocket (no hello yet).
    pub async fn upgrade(node: &Node) -> RawConn {
        let (conn, status) = RawConn::try_upgrade(node).await;
        assert_eq!(status, 101, "WebSocket upgrade");
        conn
    }

    /// Reads server frames until a close frame; returns its code, or `None` if the
    /// connection ended (or `within` passed) without one.
    pub async fn close_code_within(&mut self, within: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some((opcode, payload, used)) = parse_server_frame(&self.buffered) {
                self.buffered.drain(..used);
                if opcode == 0x8 {
                    return (payload.len() >= 2)
                        .then(|| u16::from_be_bytes([payload[0], payload[1]]));
                }
            }
            match tokio::time::timeout_at(deadline, self.fill()).await {
                Ok(true) => {}
                Ok(false) | Err(_) => return None,
            }
        }
    }
}

/// A client frame header (masked with a zero key, so the payload goes as it is).
pub fn client_frame_header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let mut header = vec![if fin { 0x80 } else { 0 } | opcode];
    match len {
        0..=125 => header.push(0x80 | len as u8),
        126..=0xffff => {
            header.push(0x80 | 126);
            header.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            header.push(0x80 | 127);
            header.extend_from_slice(&len.to_be_bytes());
        }
    }
    header.extend_from_slice(&[0, 0, 0, 0]);
    header
}

/// A whole client frame.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = client_frame_header(fin, opcode, payload.len() as u64);
    frame.extend_from_slice(payload);
    frame
}

/// One unmasked server frame at the start of `buf`: (opcode, payload, bytes used).
fn parse_server_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    let (len, at) = match buf[1] & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    Some((opcode, payload, at + len))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The node's resident memory in KiB, from `/proc/<pid>/status`.
pub fn rss_kib(node: &Node) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.pid()))
        .expect("read the node's /proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS in /proc status")
}

/// `GET /healthz` on a new connection answers 200 within `within`.
pub async fn healthy_within(node: &Node, within: Duration) -> bool {
    let probe = async {
        let mut conn = RawConn::open(node).await;
        conn.head("GET", "/healthz", &[]).await;
        conn.response().await.status == 200
    };
    tokio::time::timeout(within, probe).await.unwrap_or(false)
}
