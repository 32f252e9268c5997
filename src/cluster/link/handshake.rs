//! The handshake that opens every link connection: mutual challenge–response with
//! HMAC-SHA256 over the cluster secret.
//!
//! ```text
//! dialer   → acceptor  greeting: "PLNK", version, dialer nonce, dialer id, dialer incarnation
//! acceptor → dialer    greeting: "PLNK", version, acceptor nonce, acceptor id, incarnation
//!                      + acceptor proof
//! dialer   → acceptor  dialer proof
//! acceptor → dialer    ACCEPTED
//! ```
//!
//! A proof is the HMAC of a direction label, both nonces and both (id, incarnation) pairs.
//! Fresh nonces on both sides defeat replay; the label keeps a proof from being reflected
//! back as the other side's; the acceptor's id and incarnation under its proof tell the
//! dialer it reached the incarnation it meant.
//!
//! Owns those bytes and nothing after them. It must never let a connection through whose
//! proof did not verify, and never reads more from a stranger than the fixed greeting and a
//! node id of at most [`NODE_ID_MAX_LEN`] bytes. Timeouts are the caller's.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

type HmacSha256 = Hmac<Sha256>;

const MAGIC: [u8; 4] = *b"PLNK";
const VERSION: u8 = 1;
pub(super) const NONCE_LEN: usize = 32;
pub(super) const PROOF_LEN: usize = 32;
const ACCEPTED: u8 = 1;
const DIALER_LABEL: &[u8] = b"peerlink cluster link v1: dialer proof";
const ACCEPTOR_LABEL: &[u8] = b"peerlink cluster link v1: acceptor proof";

/// Longest node id: its length travels as one byte.
pub const NODE_ID_MAX_LEN: usize = 255;

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum HandshakeError {
    #[error("during the handshake: {0}")]
    Io(#[from] std::io::Error),
    #[error("the peer does not speak this link protocol (magic or version)")]
    NotALink,
    #[error("the peer sent a node id that is empty or not UTF-8")]
    BadNodeId,
    #[error("the peer's proof does not verify: it does not hold this cluster secret")]
    BadProof,
    #[error("reached node {found} (incarnation {found_incarnation}), not the one meant")]
    WrongPeer {
        found: String,
        found_incarnation: u64,
    },
    #[error("the acceptor did not confirm the handshake")]
    NotAccepted,
    #[error("the cluster secret cannot key HMAC-SHA256")]
    UnusableSecret,
}

/// One end of a connection: who it says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Identity {
    pub id: String,
    pub incarnation: u64,
}

/// Everything a proof covers.
struct Transcript<'a> {
    dialer_nonce: &'a [u8; NONCE_LEN],
    acceptor_nonce: &'a [u8; NONCE_LEN],
    dialer: &'a Identity,
    acceptor: &'a Identity,
}

impl Transcript<'_> {
    fn mac(&self, secret: &[u8], label: &[u8]) -> Result<HmacSha256, HandshakeError> {
        // HMAC takes a key of any length, so this does not fail; if it ever did, no proof
        // would be made or accepted.
        let mut mac =
            HmacSha256::new_from_slice(secret).map_err(|_| HandshakeError::UnusableSecret)?;
        mac.update(label);
        mac.update(self.dialer_nonce);
        mac.update(self.acceptor_nonce);
        for party in [self.dialer, self.acceptor] {
            // Length-prefixed, so that no two (id, incarnation) pairs encode alike.
            mac.update(&[id_len_byte(&party.id)]);
            mac.update(party.id.as_bytes());
            mac.update(&party.incarnation.to_be_bytes());
        }
        Ok(mac)
    }

    fn prove(&self, secret: &[u8], label: &[u8]) -> Result<[u8; PROOF_LEN], HandshakeError> {
        Ok(self.mac(secret, label)?.finalize().into_bytes().into())
    }

    /// Constant-time comparison of a received proof.
    fn verify(
        &self,
        secret: &[u8],
        label: &[u8],
        proof: &[u8; PROOF_LEN],
    ) -> Result<(), HandshakeError> {
        self.mac(secret, label)?
            .verify_slice(proof)
            .map_err(|_| HandshakeError::BadProof)
    }
}

/// Ids are checked to be at most [`NODE_ID_MAX_LEN`] bytes when the link starts and when
/// they are read from a peer.
fn id_len_byte(id: &str) -> u8 {
    u8::try_from(id.len()).unwrap_or(u8::MAX)
}

fn fresh_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0; NONCE_LEN];
    rand::fill(&mut nonce);
    nonce
}

pub(super) fn greeting(me: &Identity, nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
    let mut bytes =
        Vec::with_capacity(MAGIC.len() + 1 + NONCE_LEN + 1 + me.id.len() + 8 + PROOF_LEN);
    bytes.extend_from_slice(&MAGIC);
    bytes.push(VERSION);
    bytes.extend_from_slice(nonce);
    bytes.push(id_len_byte(&me.id));
    bytes.extend_from_slice(me.id.as_bytes());
    bytes.extend_from_slice(&me.incarnation.to_be_bytes());
    bytes
}

pub(super) async fn read_greeting<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(Identity, [u8; NONCE_LEN]), HandshakeError> {
    let mut fixed = [0; MAGIC.len() + 1 + NONCE_LEN + 1];
    stream.read_exact(&mut fixed).await?;
    if fixed[..MAGIC.len()] != MAGIC || fixed[MAGIC.len()] != VERSION {
        return Err(HandshakeError::NotALink);
    }
    let mut nonce = [0; NONCE_LEN];
    nonce.copy_from_slice(&fixed[MAGIC.len() + 1..MAGIC.len() + 1 + NONCE_LEN]);
    let id_len = usize::from(fixed[fixed.len() - 1]);
    let mut id = [0; NODE_ID_MAX_LEN];
    stream.read_exact(&mut id[..id_len]).await?;
    let id = std::str::from_utf8(&id[..id_len]).map_err(|_| HandshakeError::BadNodeId)?;
    if id.is_empty() {
        return Err(HandshakeError::BadNodeId);
    }
    let incarnation = stream.read_u64().await?;
    Ok((
        Identity {
            id: id.to_owned(),
            incarnation,
        },
        nonce,
    ))
}

/// The dialer's side: proves itself to the acceptor and checks that the acceptor is
/// `expected`.
pub(super) async fn dial<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    secret: &[u8],
    me: &Identity,
    expected: &Identity,
) -> Result<(), HandshakeError> {
    let dialer_nonce = fresh_nonce();
    stream.write_all(&greeting(me, &dialer_nonce)).await?;
    let (acceptor, acceptor_nonce) = read_greeting(stream).await?;
    let mut acceptor_proof = [0; PROOF_LEN];
    stream.read_exact(&mut acceptor_proof).await?;
    let transcript = Transcript {
        dialer_nonce: &dialer_nonce,
        acceptor_nonce: &acceptor_nonce,
        dialer: me,
        acceptor: &acceptor,
    };
    // The proof first: until it verifies, the claimed identity means nothing.
    transcript.verify(secret, ACCEPTOR_LABEL, &acceptor_proof)?;
    if acceptor != *expected {
        return Err(HandshakeError::WrongPeer {
            found: acceptor.id,
            found_incarnation: acceptor.incarnation,
        });
    }
    stream
        .write_all(&transcript.prove(secret, DIALER_LABEL)?)
        .await?;
    if stream.read_u8().await? != ACCEPTED {
        return Err(HandshakeError::NotAccepted);
    }
    Ok(())
}

/// The acceptor's side: proves itself, then checks the dialer's proof. Returns who dialed.
pub(super) async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    secret: &[u8],
    me: &Identity,
) -> Result<Identity, HandshakeError> {
    let (dialer, dialer_nonce) = read_greeting(stream).await?;
    let acceptor_nonce = fresh_nonce();
    let transcript = Transcript {
        dialer_nonce: &dialer_nonce,
        acceptor_nonce: &acceptor_nonce,
        dialer: &dialer,
        acceptor: me,
    };
    let mut reply = greeting(me, &acceptor_nonce);
    reply.extend_from_slice(&transcript.prove(secret, ACCEPTOR_LABEL)?);
    stream.write_all(&reply).await?;
    let mut dialer_proof = [0; PROOF_LEN];
    stream.read_exact(&mut dialer_proof).await?;
    transcript.verify(secret, DIALER_LABEL, &dialer_proof)?;
    stream.write_all(&[ACCEPTED]).await?;
    Ok(dialer)
}
