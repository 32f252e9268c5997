//! The text of the tus request headers (`Upload-Metadata`, `Upload-Checksum`,
//! `Upload-Offset` and `Upload-Length`) turned into values. No request and no I/O here, so
//! that unit tests and the fuzz targets can feed any string; `tus` reads the headers and
//! answers 400 with the error these functions return.

use base64::Engine;
use peerlink_actors::protocol::values::{validate_file_name, validate_mime};
use peerlink_actors::protocol::ProtocolError;

/// `Upload-Offset` / `Upload-Length`: a whole number of bytes (what `u64::from_str`
/// takes). `name` is the header's, for the message.
pub fn parse_u64(name: &str, value: &str) -> Result<u64, ProtocolError> {
    value
        .parse::<u64>()
        .map_err(|_| ProtocolError::bad_request(format!("{name} must be a whole number of bytes")))
}

/// `Upload-Metadata`: comma-separated `key base64(value)` pairs. Returns (name, mime),
/// both checked as the WebSocket protocol checks them.
pub fn parse_metadata(raw: &str) -> Result<(String, String), ProtocolError> {
    let (mut name, mut mime) = (None, None);
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .ok()
            .and_then(|v| String::from_utf8(v).ok())
            .ok_or_else(|| {
                ProtocolError::bad_request(format!(
                    "Upload-Metadata value of {key:?} is not base64 UTF-8"
                ))
            })?;
        match key {
            "filename" | "name" => name = Some(decoded),
            "filetype" | "type" => mime = Some(decoded),
            _ => {}
        }
    }
    let name = name.unwrap_or_else(|| "upload".to_owned());
    let name = validate_file_name(&name)?;
    let mime = validate_mime(mime.as_deref())?;
    Ok((name, mime))
}

/// `Upload-Checksum: sha256 <base64>`; other algorithms are refused.
pub fn parse_checksum(raw: &str) -> Result<[u8; 32], ProtocolError> {
    let (algorithm, value) = raw.split_once(' ').unwrap_or((raw, ""));
    if algorithm != "sha256" {
        return Err(ProtocolError::bad_request(format!(
            "checksum algorithm {algorithm:?} is not supported; use sha256"
        )));
    }
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()
        .and_then(|d| <[u8; 32]>::try_from(d).ok())
        .ok_or_else(|| {
            ProtocolError::bad_request("Upload-Checksum must be sha256 and a base64 SHA-256 digest")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerlink_actors::protocol::ErrorCode;

    #[test]
    fn metadata_gives_a_checked_name_and_type() {
        let raw = "filename cmVwb3J0LnBkZg==,filetype YXBwbGljYXRpb24vcGRm,other";
        assert_eq!(
            parse_metadata(raw).unwrap(),
            ("report.pdf".to_owned(), "application/pdf".to_owned())
        );
        assert_eq!(parse_metadata("").unwrap().0, "upload");
        assert_eq!(
            parse_metadata("filename !!!").unwrap_err().code,
            ErrorCode::BadRequest
        );
    }
}
