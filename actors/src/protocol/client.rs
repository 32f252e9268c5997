//! Frames a client sends, and the parser that turns a text frame into one.
//!
//! Parsing is two-step so that every failure gets the right answer: JSON that is not an
//! object, a missing or unknown `type`, and a bad field are all `bad_request`, and the
//! `id` of the frame (when it could be read) is echoed as `re` on the error.

use super::error::ProtocolError;
use super::values::{truncate_for_message, RequestId, MAX_REQUEST_ID};
use serde::Deserialize;

/// A frame from a client, with its fields as sent. Unknown fields are ignored, so that a
/// client written for a later protocol revision still works here. Values are validated by the session
/// that handles the frame, because some limits are the node's configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// First frame of a connection: a new identity (`name`) or a returning one (`token`).
    Hello {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        token: Option<String>,
    },
    Join {
        #[serde(default)]
        id: Option<String>,
        room: String,
        #[serde(default)]
        since: Option<u64>,
    },
    Leave {
        #[serde(default)]
        id: Option<String>,
        room: String,
    },
    /// Chat text to a room (`room`) or to a user (`to`), exactly one of the two.
    Say {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        room: Option<String>,
        #[serde(default)]
        to: Option<String>,
        /// May be empty when `upload` is given.
        #[serde(default)]
        text: String,
        /// A complete upload of the sender's to post with the text.
        #[serde(default)]
        upload: Option<String>,
    },
    History {
        #[serde(default)]
        id: Option<String>,
        /// A room, or…
        #[serde(default)]
        room: Option<String>,
        /// …the other person of a direct conversation (a user id).
        #[serde(default)]
        with: Option<String>,
        #[serde(default)]
        before: Option<u64>,
        #[serde(default)]
        limit: Option<u32>,
    },
    /// Application-level ping (for clients that cannot see WebSocket pings): answered by `pong`.
    Ping {
        #[serde(default)]
        id: Option<String>,
    },
    /// Offers a file to a user (`to`) or to everyone in a room (`room`).
    Offer {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        to: Option<String>,
        #[serde(default)]
        room: Option<String>,
        name: String,
        size: u64,
        #[serde(default)]
        mime: Option<String>,
        #[serde(default)]
        sha256: Option<String>,
    },
    /// A recipient takes an offered file, from `offset` (0 for a new transfer).
    Accept {
        #[serde(default)]
        id: Option<String>,
        transfer: String,
        #[serde(default)]
        offset: u64,
    },
    Decline {
        #[serde(default)]
        id: Option<String>,
        transfer: String,
    },
    /// A recipient holds bytes `[0, offset)`.
    Ack {
        #[serde(default)]
        id: Option<String>,
        transfer: String,
        offset: u64,
    },
    /// The sender has sent every byte.
    End {
        #[serde(default)]
        id: Option<String>,
        transfer: String,
    },
    /// Either side gives up on a transfer.
    Cancel {
        #[serde(default)]
        id: Option<String>,
        transfer: String,
    },
    /// Test-only fault injection, accepted only when the node runs with `PEERLINK_FAULTS=1`.
    DebugPanic {
        #[serde(default)]
        id: Option<String>,
        target: String,
        #[serde(default)]
        room: Option<String>,
        /// With target `commits`: how many of the room's next commits fail.
        #[serde(default)]
        count: Option<u32>,
    },
}

impl ClientFrame {
    /// The frame's `type`, for metrics and messages.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientFrame::Hello { .. } => "hello",
            ClientFrame::Join { .. } => "join",
            ClientFrame::Leave { .. } => "leave",
            ClientFrame::Say { .. } => "say",
            ClientFrame::History { .. } => "history",
            ClientFrame::Ping { .. } => "ping",
            ClientFrame::Offer { .. } => "offer",
            ClientFrame::Accept { .. } => "accept",
            ClientFrame::Decline { .. } => "decline",
            ClientFrame::Ack { .. } => "ack",
            ClientFrame::End { .. } => "end",
            ClientFrame::Cancel { .. } => "cancel",
            ClientFrame::DebugPanic { .. } => "debug_panic",
        }
    }
}

/// Every `type` a client may send, for metrics labels.
pub const CLIENT_KINDS: [&str; 13] = [
    "hello",
    "join",
    "leave",
    "say",
    "history",
    "ping",
    "offer",
    "accept",
    "decline",
    "ack",
    "end",
    "cancel",
    "debug_panic",
];

/// A parsed frame and its request id (already checked: at most 64 characters).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFrame {
    pub id: Option<RequestId>,
    pub frame: ClientFrame,
}

/// Why a frame could not be parsed, with the request id when it could still be read.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameError {
    pub id: Option<RequestId>,
    pub error: ProtocolError,
}

/// Parses one text frame.
pub fn parse_client_frame(text: &str) -> Result<ParsedFrame, FrameError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| FrameError {
        id: None,
        error: ProtocolError::bad_request(format!("frame is not valid JSON: {e}")),
    })?;
    let serde_json::Value::Object(object) = &value else {
        return Err(FrameError {
            id: None,
            error: ProtocolError::bad_request("frame must be a JSON object with a \"type\" field"),
        });
    };
    let id = read_request_id(object.get("id")).map_err(|error| FrameError { id: None, error })?;
    let fail = |error: ProtocolError| FrameError {
        id: id.clone(),
        error,
    };
    let kind = match object.get("type") {
        Some(serde_json::Value::String(kind)) => kind.clone(),
        Some(_) => {
            return Err(fail(ProtocolError::bad_request(
                "\"type\" must be a string",
            )))
        }
        None => {
            return Err(fail(ProtocolError::bad_request(
                "frame has no \"type\" field",
            )))
        }
    };
    if !CLIENT_KINDS.contains(&kind.as_str()) {
        return Err(fail(ProtocolError::bad_request(format!(
            "unknown frame type {:?}",
            truncate_for_message(&kind)
        ))));
    }
    let frame: ClientFrame = serde_json::from_value(value).map_err(|e| {
        fail(ProtocolError::bad_request(format!(
            "invalid {kind:?} frame: {e}"
        )))
    })?;
    Ok(ParsedFrame { id, frame })
}

fn read_request_id(raw: Option<&serde_json::Value>) -> Result<Option<RequestId>, ProtocolError> {
    match raw {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(id)) if id.chars().count() <= MAX_REQUEST_ID => {
            Ok(Some(id.as_str().into()))
        }
        Some(serde_json::Value::String(_)) => Err(ProtocolError::bad_request(format!(
            "\"id\" is longer than {MAX_REQUEST_ID} characters"
        ))),
        Some(_) => Err(ProtocolError::bad_request("\"id\" must be a string")),
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
