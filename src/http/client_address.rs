//! The client's address, for the per-address limits: the connecting address, or, when that
//! is a trusted reverse proxy, the address the proxies say in `X-Forwarded-For`.
//!
//! Only proxies listed in `PEERLINK_TRUSTED_PROXIES` are believed: anyone else could write
//! any address into the header. The list is read from the right (the entry the nearest
//! proxy added) past every trusted proxy; the first other address is the client.

use actix_web::HttpRequest;
use std::net::IpAddr;

/// The scheme and host the client used. `Forwarded`, `X-Forwarded-Host` and
/// `X-Forwarded-Proto` are believed only from a trusted proxy; from anyone else they could
/// make a foreign page's origin look like the node's own.
pub fn client_facing_host(req: &HttpRequest, trusted: &[IpAddr]) -> (String, String) {
    let from_proxy = req
        .peer_addr()
        .is_some_and(|peer| trusted.contains(&peer.ip()));
    if from_proxy {
        let info = req.connection_info();
        return (info.scheme().to_owned(), info.host().to_owned());
    }
    let host = req
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| req.app_config().host().to_owned());
    let scheme = if req.app_config().secure() {
        "https"
    } else {
        "http"
    };
    (scheme.to_owned(), host)
}

pub fn client_address(req: &HttpRequest, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get_all("X-Forwarded-For")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for entry in forwarded.iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(address) if trusted.contains(&address) => continue,
            Ok(address) => return Some(address),
            // Garbage from the client's side of the chain: the last proxy is all we know.
            Err(_) => return Some(peer),
        }
    }
    Some(peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn from(peer: &str, forwarded: Option<&str>, trusted: &[&str]) -> Option<IpAddr> {
        let mut req = TestRequest::default().peer_addr(format!("{peer}:4000").parse().unwrap());
        if let Some(header) = forwarded {
            req = req.insert_header(("X-Forwarded-For", header));
        }
        let trusted: Vec<IpAddr> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        client_address(&req.to_http_request(), &trusted)
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // No trusted proxy: the header is anyone's word.
        assert_eq!(from("127.0.0.1", Some("192.0.2.7"), &[]), ip("127.0.0.1"));
        // The proxy names the client.
        assert_eq!(
            from("127.0.0.1", Some("192.0.2.7"), &["127.0.0.1"]),
            ip("192.0.2.7")
        );
        // A client that forges an entry is still found: the rightmost untrusted one.
        assert_eq!(
            from("127.0.0.1", Some("198.51.100.1, 192.0.2.7"), &["127.0.0.1"]),
            ip("192.0.2.7")
        );
        // Two proxies in a row.
        assert_eq!(
            from(
                "127.0.0.1",
                Some("192.0.2.7, 127.0.0.2"),
                &["127.0.0.1", "127.0.0.2"]
            ),
            ip("192.0.2.7")
        );
        // A trusted proxy that sent no header, or garbage: the proxy's own address.
        assert_eq!(from("127.0.0.1", None, &["127.0.0.1"]), ip("127.0.0.1"));
        assert_eq!(
            from("127.0.0.1", Some("not-an-ip"), &["127.0.0.1"]),
            ip("127.0.0.1")
        );
    }
}
