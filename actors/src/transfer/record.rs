//! What a transfer keeps in the store: its record (from the first answer on) and its
//! acknowledged offset with the digest state there, so that a restart or another node
//! resumes it; in a cluster those writes are fenced by the transfer's ownership epoch.

use super::*;

impl TransferActor {
    /// Stores that `[0, offset)` is acknowledged and hashed, then tells the sender: a
    /// In a cluster, takes the ownership epoch before anything else happens (the mailbox
    /// waits): a previous owner's progress writes are refused from then on.
    pub(super) fn claim(&mut self, ctx: &mut Context<Self>) {
        let Some(incarnation) = self.node.incarnation else {
            return;
        };
        let (kind, key) = (OwnedKind::Transfer, self.id.to_string());
        let claim = self.node.store.claim_ownership(
            kind,
            key.clone(),
            self.node.node_id.clone(),
            incarnation,
        );
        ctx.wait(
            claim
                .into_actor(self)
                .map(move |result, transfer, _| match result {
                    Ok(epoch) => transfer.fence = Some(Fence { kind, key, epoch }),
                    Err(e) => log::warn!(
                        "transfer {}: no ownership epoch ({e}); its progress is not fenced",
                        transfer.id
                    ),
                }),
        );
    }

    /// `progress` is a promise that a restart of the node resumes no earlier.
    pub(super) fn secure(&mut self, offset: u64, digest: Vec<u8>, ctx: &mut Context<Self>) {
        let write = self
            .node
            .store
            .transfer_progress(self.id, offset, digest, self.fence.clone());
        ctx.spawn(write.into_actor(self).map(move |result, transfer, ctx| {
            if let Err(StoreError::Fenced(_)) = result {
                log::warn!("transfer {}: another node has taken it over; this instance stops", transfer.id);
                transfer.fenced = true;
                return ctx.stop();
            }
            if let Err(e) = result {
                log::warn!("transfer {}: progress at {offset} not stored ({e}); a restart would resume earlier", transfer.id);
            }
            if offset > transfer.secured {
                transfer.secured = offset;
                let frame = ServerFrame::Progress { transfer: transfer.id, offset };
                transfer.to_session(transfer.sender_session, frame);
            }
        }));
    }

    /// Stores the receivers again after one of them dropped out, if the transfer is stored.
    pub(super) fn resave(&mut self, ctx: &mut Context<Self>) {
        if self.saved {
            self.save(ctx);
        }
    }

    /// Stores the transfer as it is (when its receivers change).
    pub(super) fn save(&mut self, ctx: &mut Context<Self>) {
        let write = self.record_write();
        ctx.spawn(write.into_actor(self).map(|result, transfer, _| {
            if let Err(e) = result {
                log::warn!(
                    "transfer {} not stored ({e}); it will not survive a restart",
                    transfer.id
                );
            }
        }));
    }

    /// The write of the transfer's record as it is now: its offer and receivers. Progress
    /// is written separately (`secure`) and a later save never moves it back.
    pub(super) fn record_write(&mut self) -> crate::store::StoreFuture<()> {
        let record = TransferRecord {
            id: self.id,
            sender: self.offer.from.clone(),
            room: self.offer.room.clone(),
            name: self.offer.name.clone(),
            size: self.offer.size,
            mime: self.offer.mime.clone(),
            sha256: self.offer.sha256.clone(),
            receivers: self
                .receivers
                .iter()
                .map(|r| ReceiverRecord {
                    id: r.user.id,
                    name: r.user.name.to_string(),
                    acked: r.acked,
                    active: r.standing == Standing::Active,
                    invited: r.standing == Standing::Invited,
                })
                .collect(),
            acked: 0,
            digest: Sha256State::new().to_bytes(),
        };
        self.saved = true;
        self.node.store.save_transfer(record)
    }
}
