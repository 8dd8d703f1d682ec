//! The audit chain's head, signed by the appliance, and exports of the chain with their proof.
//!
//! The hash chain shows any event edited, inserted, reordered or removed from the middle; it
//! cannot show events removed from the end, or a whole chain replaced by an older copy. A signed
//! head held elsewhere (by the compliance officer, in another system) can: the chain must still
//! contain that event, with that hash, at that position.

use ring::signature::{self, Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::{self, AuditEvent, ChainReport};
use crate::{Actor, Store, StoreError};

/// The head of the audit chain at a moment, signed with the appliance's Ed25519 key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHead {
    pub seq: i64,
    pub hash: String,
    pub signed_ms: i64,
    pub signed_at: String,
    /// The appliance's public key (hex), so a copy can be checked without the appliance.
    pub public_key: String,
    pub signature: String,
}

impl SignedHead {
    /// The versioned text the signature covers; add a v2, never edit v1.
    fn text_v1(seq: i64, hash: &str, signed_ms: i64) -> String {
        format!("scribe audit head v1\nseq {seq}\nhash {hash}\nsigned_ms {signed_ms}\n")
    }

    /// Whether the signature is the embedded key's over this head.
    pub fn signature_valid(&self) -> bool {
        let (Ok(public), Ok(sig)) = (hex::decode(&self.public_key), hex::decode(&self.signature)) else {
            return false;
        };
        signature::UnparsedPublicKey::new(&signature::ED25519, &public)
            .verify(Self::text_v1(self.seq, &self.hash, self.signed_ms).as_bytes(), &sig)
            .is_ok()
    }
}

/// How a head held elsewhere compares with this appliance's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadCheck {
    /// The chain still holds the head's event, unchanged; `later` events came after it.
    Consistent { later: i64 },
    /// The head's signature does not verify, or it is another appliance's.
    NotOurs(String),
    /// The chain is shorter than the head: events were removed from its end.
    RolledBack { head_seq: i64, chain_len: i64 },
    /// The chain has another event where the head's was: it was replaced.
    Diverged { seq: i64 },
}

/// The audit trail as handed to a compliance officer: every event (ids, roles, actions,
/// purposes and times — never note text), the chain check, and a signed head over the last one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditExport {
    pub format: String,
    pub events: Vec<AuditEvent>,
    pub head: SignedHead,
    /// Who answers for this appliance's PHI risk, when the export was made.
    #[serde(default)]
    pub security_owner: Option<crate::SecurityOwner>,
}

pub const EXPORT_FORMAT: &str = "scribe-audit-export-v1";

impl AuditExport {
    /// Checks an export on its own: the chain recomputes, and the signed head names its last
    /// event. Returns the number of events, or what is wrong.
    pub fn verify(&self) -> Result<usize, String> {
        if self.format != EXPORT_FORMAT {
            return Err(format!("not a {EXPORT_FORMAT} file"));
        }
        let report = audit::check_chain(&self.events);
        if let Some((seq, why)) = report.broken_at {
            return Err(format!("event {seq} {why}"));
        }
        if !self.head.signature_valid() {
            return Err("the signed head's signature does not verify".into());
        }
        match self.events.last() {
            Some(last) if last.seq == self.head.seq && last.hash == self.head.hash => Ok(self.events.len()),
            _ => Err("the signed head does not name the last event of the export".into()),
        }
    }
}

impl Store {
    /// Records and signs the chain's current head (the signing is itself the head's event).
    pub fn sign_audit_head(&mut self, by: &Actor) -> Result<SignedHead, StoreError> {
        let tx = self.write_tx()?;
        audit::append(&tx, by, "audit.head.sign", None, "tamper evidence")?;
        let (seq, hash): (i64, String) = tx.query_row(
            "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let pkcs8: Vec<u8> = tx.query_row("SELECT value FROM meta WHERE key = 'signing_key_pkcs8'", [], |r| {
            r.get(0)
        })?;
        let pair =
            Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| StoreError::Corrupt("appliance signing key".into()))?;
        let signed_ms = crate::now_ms();
        let signature = pair.sign(SignedHead::text_v1(seq, &hash, signed_ms).as_bytes());
        tx.execute(
            "INSERT INTO audit_heads (seq, hash, signed_ms, signature) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![seq, hash, signed_ms, hex::encode(signature.as_ref())],
        )?;
        tx.commit()?;
        Ok(SignedHead {
            seq,
            hash,
            signed_ms,
            signed_at: crate::rfc3339_utc(signed_ms),
            public_key: hex::encode(pair.public_key().as_ref()),
            signature: hex::encode(signature.as_ref()),
        })
    }

    /// Compares a head held elsewhere with this chain.
    pub fn check_head(&self, held: &SignedHead) -> Result<HeadCheck, StoreError> {
        let public: Vec<u8> =
            self.conn
                .query_row("SELECT value FROM meta WHERE key = 'signing_public_key'", [], |r| {
                    r.get(0)
                })?;
        if !held.signature_valid() {
            return Ok(HeadCheck::NotOurs("its signature does not verify".into()));
        }
        if hex::encode(&public) != held.public_key {
            return Ok(HeadCheck::NotOurs(format!(
                "signed by key {}, this appliance's is {}",
                fingerprint(&held.public_key),
                fingerprint(&hex::encode(&public))
            )));
        }
        let chain_len: i64 = self
            .conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM audit_events", [], |r| r.get(0))?;
        if chain_len < held.seq {
            return Ok(HeadCheck::RolledBack {
                head_seq: held.seq,
                chain_len,
            });
        }
        let hash: Option<String> = rusqlite::OptionalExtension::optional(self.conn.query_row(
            "SELECT hash FROM audit_events WHERE seq = ?1",
            [held.seq],
            |r| r.get(0),
        ))?;
        Ok(if hash.as_deref() == Some(held.hash.as_str()) {
            HeadCheck::Consistent {
                later: chain_len - held.seq,
            }
        } else {
            HeadCheck::Diverged { seq: held.seq }
        })
    }

    /// The whole trail with a freshly signed head; the export is itself audited.
    pub fn audit_export(&mut self, by: &Actor) -> Result<(AuditExport, ChainReport), StoreError> {
        {
            let tx = self.write_tx()?;
            audit::append(&tx, by, "audit.export", None, "compliance")?;
            tx.commit()?;
        }
        let head = self.sign_audit_head(by)?;
        let events = self.audit_events(None)?;
        let report = audit::check_chain(&events);
        Ok((
            AuditExport {
                format: EXPORT_FORMAT.into(),
                events,
                head,
                security_owner: self.security_owner()?,
            },
            report,
        ))
    }
}

fn fingerprint(public_hex: &str) -> String {
    let bytes = hex::decode(public_hex).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..8])
}
