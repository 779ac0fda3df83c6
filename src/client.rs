//! A thin Rust client for route and failure handlers (cargo feature `client`).
//!
//! It hashes bodies locally (only 32 bytes cross the wire), puts a deadline on
//! every call, retries `UNAVAILABLE` a bounded number of times, and fails
//! closed: every error is an `Err`, never an allow.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tonic::{Code, Request, Status, transport::Channel};

use crate::proto::{
    AuthorizeBearerRequest, AuthorizeBearerResponse, AuthorizeRequest, AuthorizeResponse,
    HttpHeader, VerifySignatureRequest, VerifySignatureResponse,
    authorizer_client::AuthorizerClient,
};

/// Connection and retry settings.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Deadline of each attempt.
    pub timeout: Duration,
    /// Deadline for establishing the connection.
    pub connect_timeout: Duration,
    /// Attempts after the first when signet answers `UNAVAILABLE`.
    pub retries: u32,
    /// First backoff; doubled on each retry.
    pub backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(2),
            retries: 2,
            backoff: Duration::from_millis(50),
        }
    }
}

/// Why a call gave no decision. Callers must treat every one as a denial.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The address is not a valid URI.
    #[error("invalid signet address")]
    InvalidAddress,
    /// signet answered with an error status (after retries for `UNAVAILABLE`).
    #[error("signet call failed: {0}")]
    Call(#[from] Status),
}

/// A cheap-to-clone handle on one channel to signet; make one per process.
#[derive(Clone, Debug)]
pub struct SignetClient {
    inner: AuthorizerClient<Channel>,
    options: ClientOptions,
}

/// One incoming HTTP request, for [`SignetClient::authorize`].
#[derive(Clone, Debug, Default)]
pub struct HttpRequest<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The full url the request was sent to.
    pub url: &'a str,
    /// Header names and values as received.
    pub headers: Vec<(&'a str, &'a str)>,
    /// The raw body.
    pub body: &'a [u8],
    /// Policy name; empty = default.
    pub policy: &'a str,
}

impl SignetClient {
    /// A client for `address` (e.g. `http://signet:50051`). The connection is
    /// made on first use and re-made when lost.
    pub fn new(address: &str, options: ClientOptions) -> Result<Self, ClientError> {
        let channel = Channel::from_shared(address.to_owned())
            .map_err(|_| ClientError::InvalidAddress)?
            .connect_timeout(options.connect_timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(Self {
            inner: AuthorizerClient::new(channel),
            options,
        })
    }

    /// Verifies an `Upstash-Signature` for `body` sent to `url` (empty url:
    /// `sub` not checked). `Ok` carries the decision; check `valid`.
    pub async fn verify_signature(
        &self,
        signature: &str,
        body: &[u8],
        url: &str,
    ) -> Result<VerifySignatureResponse, ClientError> {
        let message = VerifySignatureRequest {
            signature: signature.to_owned(),
            body_sha256: Some(Sha256::digest(body).to_vec().into()),
            url: url.to_owned(),
            ..Default::default()
        };
        self.call(
            message,
            |mut c, r| async move { c.verify_signature(r).await },
        )
        .await
    }

    /// Checks an `Authorization` header value (or bare token) against a policy.
    pub async fn authorize_bearer(
        &self,
        authorization: &str,
        policy: &str,
    ) -> Result<AuthorizeBearerResponse, ClientError> {
        let message = AuthorizeBearerRequest {
            authorization: authorization.to_owned(),
            policy: policy.to_owned(),
        };
        self.call(
            message,
            |mut c, r| async move { c.authorize_bearer(r).await },
        )
        .await
    }

    /// Authorizes a whole request (signature, bearer, failure callbacks).
    pub async fn authorize(&self, req: &HttpRequest<'_>) -> Result<AuthorizeResponse, ClientError> {
        // A failure callback carries the original credential in its body, so
        // signet needs the body itself there; elsewhere its digest suffices.
        let failure_callback = req.headers.iter().any(|(name, value)| {
            (name.eq_ignore_ascii_case("upstash-workflow-is-failure")
                && value.eq_ignore_ascii_case("true"))
                || (name.eq_ignore_ascii_case("upstash-workflow-failure-callback")
                    && !value.is_empty())
        });
        let (body, body_sha256) = if failure_callback {
            (Some(req.body.to_vec().into()), None)
        } else {
            (None, Some(Sha256::digest(req.body).to_vec().into()))
        };
        let message = AuthorizeRequest {
            method: req.method.to_owned(),
            url: req.url.to_owned(),
            headers: req
                .headers
                .iter()
                .map(|(name, value)| HttpHeader {
                    name: (*name).to_owned(),
                    value: (*value).to_owned(),
                })
                .collect(),
            body,
            body_sha256,
            policy: req.policy.to_owned(),
            key_set: String::new(),
        };
        self.call(message, |mut c, r| async move { c.authorize(r).await })
            .await
    }

    async fn call<M, R, F, Fut>(&self, message: M, rpc: F) -> Result<R, ClientError>
    where
        M: Clone,
        F: Fn(AuthorizerClient<Channel>, Request<M>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<R>, Status>>,
    {
        let mut backoff = self.options.backoff;
        let mut attempt = 0;
        loop {
            let mut request = Request::new(message.clone());
            request.set_timeout(self.options.timeout);
            match rpc(self.inner.clone(), request).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status)
                    if status.code() == Code::Unavailable && attempt < self.options.retries =>
                {
                    attempt += 1;
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(status) => return Err(status.into()),
            }
        }
    }
}
