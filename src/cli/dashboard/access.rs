//! Who may use the dashboard: loopback without a token by default; any other address only with
//! a token (`--token-file`); `--read-only` refuses every action. Pure, so the rules are tested
//! without a server.

use std::net::SocketAddr;

/// The access rules a running dashboard enforces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// The token every `/api` request must carry, when one was configured.
    pub token: Option<String>,
    /// Whether actions (promote, abort, ...) are refused.
    pub read_only: bool,
}

/// Why the dashboard will not start or will not serve a request.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccessError {
    /// Bound beyond loopback with no token: anyone on the network could abort rollouts.
    #[error(
        "dashboard: --listen {0} is not a loopback address; pass --token-file FILE so that only holders of the token can use it"
    )]
    TokenRequired(SocketAddr),
    /// The token file is empty.
    #[error("dashboard: token file {0} is empty")]
    EmptyToken(String),
    /// The request carries no token or a wrong one.
    #[error("missing or wrong dashboard token")]
    Unauthorized,
    /// An action on a read-only dashboard.
    #[error("the dashboard is read-only (--read-only)")]
    ReadOnly,
}

/// The access rules for a dashboard bound to `listen` with the token file's text (if any).
pub fn access_for(
    listen: SocketAddr,
    token_file: Option<(&str, &str)>,
    read_only: bool,
) -> Result<Access, AccessError> {
    let token = match token_file {
        Some((path, text)) => {
            let token = text.trim();
            if token.is_empty() {
                return Err(AccessError::EmptyToken(path.to_string()));
            }
            Some(token.to_string())
        }
        None if listen.ip().is_loopback() => None,
        None => return Err(AccessError::TokenRequired(listen)),
    };
    Ok(Access { token, read_only })
}

impl Access {
    /// Checks a request's credentials: the `Authorization: Bearer` header, else the `token`
    /// query parameter (an `EventSource` cannot set headers).
    pub fn authorize(
        &self,
        bearer: Option<&str>,
        query_token: Option<&str>,
    ) -> Result<(), AccessError> {
        let Some(want) = &self.token else {
            return Ok(());
        };
        let given = bearer.or(query_token).unwrap_or_default();
        if same_secret(want.as_bytes(), given.as_bytes()) {
            Ok(())
        } else {
            Err(AccessError::Unauthorized)
        }
    }

    /// Checks that actions are allowed.
    pub fn allow_action(&self) -> Result<(), AccessError> {
        if self.read_only {
            Err(AccessError::ReadOnly)
        } else {
            Ok(())
        }
    }
}

/// Compares two secrets in time independent of where they differ (the length still shows).
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_needs_no_token_other_addresses_do() {
        let open = access_for(addr("127.0.0.1:3100"), None, false).unwrap();
        assert_eq!(open.authorize(None, None), Ok(()));
        assert_eq!(
            access_for(addr("[::1]:3100"), None, true).unwrap(),
            Access {
                token: None,
                read_only: true
            }
        );
        let err = access_for(addr("0.0.0.0:3100"), None, false).unwrap_err();
        assert_eq!(err, AccessError::TokenRequired(addr("0.0.0.0:3100")));
        assert!(err.to_string().contains("--token-file"));
        assert_eq!(
            access_for(addr("0.0.0.0:3100"), Some(("t.txt", " \n")), false),
            Err(AccessError::EmptyToken("t.txt".into()))
        );
    }

    #[test]
    fn tokens_are_checked_from_header_or_query() {
        let a = access_for(addr("10.0.0.1:80"), Some(("f", "s3cret\n")), false).unwrap();
        assert_eq!(a.authorize(Some("s3cret"), None), Ok(()));
        assert_eq!(a.authorize(None, Some("s3cret")), Ok(()));
        assert_eq!(a.authorize(None, None), Err(AccessError::Unauthorized));
        assert_eq!(
            a.authorize(Some("s3cre"), None),
            Err(AccessError::Unauthorized)
        );
        assert_eq!(
            a.authorize(Some("s3creT"), Some("s3cret")),
            Err(AccessError::Unauthorized)
        );
        assert_eq!(a.allow_action(), Ok(()));
        let ro = Access {
            read_only: true,
            ..a
        };
        assert_eq!(ro.allow_action(), Err(AccessError::ReadOnly));
    }
}
