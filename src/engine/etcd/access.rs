//! Access to a secured etcd cluster: TLS with the certificate authority to trust and a client
//! certificate, etcd users, and the typed errors of a cluster that refuses access.

use std::fmt;
use std::path::Path;

use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};

use crate::{Error, Result};

/// TLS to an etcd cluster ([`StoreBuilder::etcd_tls`](crate::StoreBuilder::etcd_tls)): the
/// certificate authority that signed the members' certificates, and optionally a client
/// certificate for clusters that require one (`etcd --client-cert-auth`), all PEM. Endpoints
/// are then `https://` URLs.
///
/// ```no_run
/// let tls = revkv::EtcdTls::ca_file("ca.pem")?.client_files("client.pem", "client-key.pem")?;
/// let store = revkv::Store::builder()
///     .etcd(["https://10.0.0.1:2379"])
///     .etcd_tls(tls)
///     .namespace("shop")
///     .open()?;
/// # Ok::<(), revkv::Error>(())
/// ```
#[derive(Clone)]
pub struct EtcdTls {
    ca: Vec<u8>,
    /// The client's certificate and private key.
    client: Option<(Vec<u8>, Vec<u8>)>,
}

impl EtcdTls {
    /// Trust the certificate authority `pem`.
    pub fn ca_pem(pem: impl Into<Vec<u8>>) -> Self {
        Self {
            ca: pem.into(),
            client: None,
        }
    }

    /// Trust the certificate authority in the PEM file `path`.
    ///
    /// # Errors
    /// [`Error::Io`], naming the file, if it cannot be read.
    pub fn ca_file(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::ca_pem(read(path.as_ref())?))
    }

    /// Present the client certificate `cert` with its private key `key`.
    #[must_use]
    pub fn client_pem(mut self, cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.client = Some((cert.into(), key.into()));
        self
    }

    /// Present the client certificate in the PEM file `cert` with the private key in `key`.
    ///
    /// # Errors
    /// [`Error::Io`], naming the file, if either cannot be read.
    pub fn client_files(self, cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self> {
        Ok(self.client_pem(read(cert.as_ref())?, read(key.as_ref())?))
    }
}

impl fmt::Debug for EtcdTls {
    /// Without the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdTls")
            .field("client_certificate", &self.client.is_some())
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::Io(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        ))
    })
}

/// `options` with `tls` and the etcd user `user` (name and password).
pub(super) fn secured(
    mut options: ConnectOptions,
    tls: Option<&EtcdTls>,
    user: Option<&(String, String)>,
) -> ConnectOptions {
    if let Some(tls) = tls {
        let mut config = TlsOptions::new().ca_certificate(Certificate::from_pem(&tls.ca));
        if let Some((cert, key)) = &tls.client {
            config = config.identity(Identity::from_pem(cert, key));
        }
        options = options.with_tls(config);
    }
    if let Some((name, password)) = user {
        options = options
            .with_user(name.clone(), password.clone())
            .with_auto_token_refresh(true);
    }
    options
}

/// The error a cluster's refusal of access is, if `error` is one: a failed TLS handshake, a
/// wrong user or password, or a user without permission on `prefix`, the store's keys. None
/// of them gets better by trying again.
pub(super) fn refusal(error: &etcd_client::Error, prefix: &str) -> Option<Error> {
    if let etcd_client::Error::GRpcStatus(status) = error {
        let message = status.message();
        if status.code() == tonic::Code::PermissionDenied || message.contains("permission denied") {
            return Some(Error::EtcdPermission {
                prefix: prefix.to_owned(),
            });
        }
        if message.contains("authentication failed") || message.contains("invalid user ID") {
            return Some(Error::EtcdAuthentication);
        }
        if message.contains("certificate") || message.contains("handshake") {
            return Some(Error::EtcdCertificate {
                reason: message.to_owned(),
            });
        }
    }
    // Otherwise a failed handshake is a transport error whose causes name the certificate:
    // the deepest of them says most plainly what failed.
    let mut cause: Option<&dyn std::error::Error> = Some(error);
    let mut reason = None;
    while let Some(current) = cause {
        let text = current.to_string();
        if text.contains("certificate") || text.contains("handshake") {
            reason = Some(text);
        }
        cause = current.source();
    }
    if let Some(reason) = reason {
        return Some(Error::EtcdCertificate { reason });
    }
    None
}
