//! Validated value types. A value of one of these types has passed the protocol's rules,
//! so code past the parser never re-checks them.

use super::error::ProtocolError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Longest room name, in characters (protocol: 1–64 of `[A-Za-z0-9_.-]`).
pub const MAX_ROOM_NAME: usize = 64;
/// Longest client-chosen request id, in characters.
pub const MAX_REQUEST_ID: usize = 64;
/// Longest display name, in characters.
pub const MAX_USER_NAME: usize = 32;

/// A room's name: 1–64 characters of `[A-Za-z0-9_.-]`. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "Arc<str>", try_from = "String")]
pub struct RoomName(Arc<str>);

impl From<RoomName> for Arc<str> {
    fn from(room: RoomName) -> Arc<str> {
        room.0
    }
}

impl TryFrom<String> for RoomName {
    type Error = ProtocolError;

    /// Between nodes: conversation names (which clients may not use) are accepted too.
    fn try_from(raw: String) -> Result<RoomName, ProtocolError> {
        if RoomName::users_of_conversation(&raw).is_some() {
            return Ok(RoomName(raw.into()));
        }
        RoomName::parse(&raw)
    }
}

/// Names of this form are direct conversations, never rooms a client names.
const CONVERSATION_PREFIX: &str = "dm.";

impl RoomName {
    pub fn parse(raw: &str) -> Result<RoomName, ProtocolError> {
        let valid_chars = raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if raw.is_empty() || raw.len() > MAX_ROOM_NAME || !valid_chars {
            return Err(ProtocolError::bad_request(format!(
                "invalid room name {:?}: use 1-{MAX_ROOM_NAME} characters of A-Z a-z 0-9 _ . -",
                truncate_for_message(raw)
            )));
        }
        if raw.starts_with(CONVERSATION_PREFIX) {
            return Err(ProtocolError::bad_request(format!(
                "room names starting with {CONVERSATION_PREFIX:?} are reserved"
            )));
        }
        Ok(RoomName(raw.into()))
    }

    /// The direct conversation of two users (in either order): stored and numbered like a
    /// room of two, under a name no client can join.
    pub fn conversation(a: UserId, b: UserId) -> RoomName {
        let (low, high) = if a.0 <= b.0 { (a, b) } else { (b, a) };
        RoomName(
            format!(
                "{CONVERSATION_PREFIX}{}.{}",
                low.0.simple(),
                high.0.simple()
            )
            .into(),
        )
    }

    /// The two users of a direct conversation; `None` for a room.
    pub fn conversation_users(&self) -> Option<(UserId, UserId)> {
        RoomName::users_of_conversation(&self.0)
    }

    fn users_of_conversation(name: &str) -> Option<(UserId, UserId)> {
        let (a, b) = name.strip_prefix(CONVERSATION_PREFIX)?.split_once('.')?;
        Some((
            UserId(uuid::Uuid::try_parse(a).ok()?),
            UserId(uuid::Uuid::try_parse(b).ok()?),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user's id: a UUID, chosen by the node when the identity is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub uuid::Uuid);

impl UserId {
    pub fn new_random() -> Self {
        UserId(uuid::Uuid::new_v4())
    }

    pub fn parse(raw: &str) -> Result<UserId, ProtocolError> {
        uuid::Uuid::parse_str(raw).map(UserId).map_err(|_| {
            ProtocolError::bad_request(format!(
                "{:?} is not a user id (a UUID)",
                truncate_for_message(raw)
            ))
        })
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A node of the cluster, by its stable id, interned: cheap to copy and compare. The names
/// live for the life of the process (a cluster has few nodes, and a node's id never changes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeTag(u32);

/// The interned node names, and the index of each.
static NODE_NAMES: std::sync::RwLock<Vec<Arc<str>>> = std::sync::RwLock::new(Vec::new());

impl NodeTag {
    /// The tag of the node named `name` (interned on first use).
    pub fn of(name: &str) -> NodeTag {
        let position = |names: &Vec<Arc<str>>| names.iter().position(|n| n.as_ref() == name);
        if let Some(i) = position(&NODE_NAMES.read().unwrap_or_else(|p| p.into_inner())) {
            return NodeTag(i as u32);
        }
        let mut names = NODE_NAMES.write().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = position(&names) {
            return NodeTag(i as u32);
        }
        names.push(name.into());
        NodeTag((names.len() - 1) as u32)
    }

    /// The node's id.
    pub fn name(self) -> Arc<str> {
        let names = NODE_NAMES.read().unwrap_or_else(|p| p.into_inner());
        names
            .get(self.0 as usize)
            .cloned()
            .unwrap_or_else(|| "?".into())
    }
}

impl fmt::Debug for NodeTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl fmt::Display for NodeTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for NodeTag {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for NodeTag {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(NodeTag::of(&name))
    }
}

/// One WebSocket connection, addressed across the cluster: the node it is connected to and
/// its id there. Clients only ever see the UUID (`Display`, and `welcome.session`); between
/// nodes it travels whole, so that any actor can reach any session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionId {
    pub node: NodeTag,
    pub id: uuid::Uuid,
}

impl SessionId {
    /// A new session on `node`.
    pub fn new_random(node: NodeTag) -> Self {
        SessionId {
            node,
            id: uuid::Uuid::new_v4(),
        }
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.id.fmt(f)
    }
}

/// A user as other users see them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub name: Arc<str>,
}

/// Checks a display name: 1–32 characters after trimming, no control characters.
pub fn validate_user_name(raw: &str) -> Result<String, ProtocolError> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_USER_NAME || has_hidden(name) {
        return Err(ProtocolError::bad_request(format!(
            "invalid name {:?}: use 1-{MAX_USER_NAME} characters without control, invisible or direction-changing characters",
            truncate_for_message(raw)
        )));
    }
    Ok(name.to_owned())
}

/// Whether a name holds a character a reader cannot see for what it is: a control
/// character, or a format character (Unicode category Cf: zero-width spaces and joiners,
/// bidirectional overrides that make `exe.pdf` read `fdp.exe`, soft hyphens, tags). The
/// one exception is a zero-width joiner after a symbol, which joins emoji (👩‍💻).
fn has_hidden(name: &str) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    let mut previous = None;
    name.chars().any(|c| {
        let joins_emoji = c == '\u{200d}'
            && previous.is_some_and(|p: char| p.general_category() == GeneralCategory::OtherSymbol);
        previous = Some(c);
        c.is_control() || (c.general_category() == GeneralCategory::Format && !joins_emoji)
    })
}

/// Checks chat text: not empty, at most `max_chars` characters (Unicode scalar values).
pub fn validate_text(text: &str, max_chars: usize) -> Result<(), ProtocolError> {
    if text.trim().is_empty() {
        return Err(ProtocolError::bad_request("text is empty"));
    }
    // Count only as far as needed: a long text is rejected without a full scan.
    if text.len() > max_chars && text.chars().nth(max_chars).is_some() {
        return Err(ProtocolError::new(
            super::ErrorCode::TooLarge,
            format!("text is longer than {max_chars} characters"),
        ));
    }
    Ok(())
}

/// Longest file name in an offer or upload, in characters.
pub const MAX_FILE_NAME: usize = 255;
/// Longest MIME type in an offer or upload.
pub const MAX_MIME: usize = 127;
/// The type of a file whose sender named none.
pub const DEFAULT_MIME: &str = "application/octet-stream";

/// A file name is shown to people, never used on disk: 1–255 characters, no control
/// characters.
pub fn validate_file_name(raw: &str) -> Result<String, ProtocolError> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_FILE_NAME || has_hidden(name) {
        return Err(ProtocolError::bad_request(format!(
            "invalid file name {:?}: use 1-{MAX_FILE_NAME} characters without control, invisible or direction-changing characters",
            truncate_for_message(raw)
        )));
    }
    Ok(name.to_owned())
}

pub fn validate_mime(raw: Option<&str>) -> Result<String, ProtocolError> {
    let Some(mime) = raw.map(str::trim).filter(|m| !m.is_empty()) else {
        return Ok(DEFAULT_MIME.to_owned());
    };
    let printable = mime.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if mime.len() > MAX_MIME || !printable || !mime.contains('/') {
        return Err(ProtocolError::bad_request(format!(
            "invalid MIME type {:?}: use type/subtype",
            truncate_for_message(mime)
        )));
    }
    Ok(mime.to_ascii_lowercase())
}

/// A client-chosen request id, echoed back as `re`.
pub type RequestId = Arc<str>;

/// Shortens user input quoted back in an error message.
pub(crate) fn truncate_for_message(raw: &str) -> String {
    raw.chars().take(80).collect()
}

#[cfg(test)]
#[path = "values_tests.rs"]
mod tests;
