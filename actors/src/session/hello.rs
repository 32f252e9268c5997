//! Signing in: `hello` with a name (a new identity, limited per client address) or with a
//! token (coming back), and what a session does once it is welcomed.

use super::*;

impl SessionActor {
    pub(super) fn hello(
        &mut self,
        name: Option<String>,
        token: Option<String>,
        re: Option<RequestId>,
        ctx: &mut Context<Self>,
    ) -> Result<(), ProtocolError> {
        let store = self.node.store.clone();
        let lookup = match (name, token) {
            (Some(name), None) => {
                let name = validate_user_name(&name)?;
                if let Some(client) = self.client {
                    self.node
                        .signups
                        .check(client, Instant::now())
                        .map_err(ProtocolError::too_many_signups)?;
                }
                store.create_identity(name)
            }
            (None, Some(token)) => {
                let presented = token.clone();
                Box::pin(async move {
                    store.authenticate(token).await.map(|user| NewIdentity {
                        user,
                        token: presented,
                    })
                })
            }
            _ => {
                return Err(ProtocolError::bad_request(
                    "hello takes either a name (a new user) or a token (a returning one)",
                ))
            }
        };
        if let Phase::AwaitingHello(bucket) = &self.phase {
            self.phase = Phase::Authenticating(bucket.clone());
        }
        ctx.spawn(
            lookup
                .into_actor(self)
                .map(move |result, session, _| session.on_identity(result, re)),
        );
        Ok(())
    }

    pub(super) fn on_identity(
        &mut self,
        result: Result<NewIdentity, StoreError>,
        re: Option<RequestId>,
    ) {
        let bucket = match &self.phase {
            Phase::Authenticating(bucket) => bucket.clone(),
            _ => return,
        };
        let identity = match result {
            Ok(identity) => identity,
            Err(e) => {
                self.phase = Phase::AwaitingHello(bucket);
                let error = match e {
                    StoreError::UnknownToken => ProtocolError::new(
                        ErrorCode::Unauthorized,
                        "the token is unknown or has expired; send hello with a name to start a new identity",
                    ),
                    other => ProtocolError::new(ErrorCode::Unavailable, format!("cannot check identities right now: {other}")),
                };
                return self.send_error(re.as_deref(), &error);
            }
        };
        let limits = &self.node.limits;
        let welcome_limits = WelcomeLimits {
            chunk_size: limits.chunk_size,
            window: limits.window,
            max_file_size: limits.max_file_size,
            max_text_chars: limits.max_text_chars,
            max_frame_bytes: limits.max_text_frame,
        };
        self.send(ServerFrame::Welcome {
            user: &identity.user,
            token: &identity.token,
            session: self.id.id,
            node: &self.node.node_id,
            limits: &welcome_limits,
            re: re.as_deref(),
        });
        self.node
            .host
            .register_session(self.sink.clone(), identity.user.clone());
        if let Err(e) = self
            .node
            .router
            .send_user(identity.user.id, PeerCommand::Attach(self.id))
        {
            log::warn!("session {}: peer unavailable: {e}", self.id);
        }
        log::debug!(
            "session {} is {} ({})",
            self.id,
            identity.user.name,
            identity.user.id
        );
        self.phase = Phase::Ready {
            user: identity.user,
            token: identity.token,
        };
    }
}
