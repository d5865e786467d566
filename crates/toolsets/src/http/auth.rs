//! How a link authenticates to its HTTP backend, read from its credentials.

use crate::credentials::Credentials;

/// The credential holding a bearer token.
pub const TOKEN: &str = "token";
/// The credentials of HTTP basic auth.
pub const USERNAME: &str = "username";
/// See [`USERNAME`].
pub const PASSWORD: &str = "password";

/// The `Authorization` a link sends. `Debug` never shows a value.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// No credentials.
    None,
    /// `Authorization: Bearer <token>` from the credential `token`.
    Bearer(String),
    /// HTTP basic auth from `username` and `password` (an empty password when absent).
    Basic { username: String, password: String },
}

impl Auth {
    /// `token` wins over `username`/`password`; neither means no auth.
    pub fn from_credentials(credentials: &Credentials) -> Self {
        if let Some(token) = credentials
            .get(TOKEN)
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            return Auth::Bearer(token.to_owned());
        }
        match credentials.get(USERNAME).filter(|u| !u.is_empty()) {
            Some(username) => Auth::Basic {
                username: username.to_owned(),
                password: credentials.get(PASSWORD).unwrap_or_default().to_owned(),
            },
            None => Auth::None,
        }
    }

    /// What was sent, for messages: "the token", "the username and password".
    pub fn what(&self) -> &'static str {
        match self {
            Auth::None => "no credentials",
            Auth::Bearer(_) => "the token",
            Auth::Basic { .. } => "the username and password",
        }
    }

    pub(super) fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Basic { username, password } => request.basic_auth(username, Some(password)),
        }
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "Auth::None",
            Auth::Bearer(_) => "Auth::Bearer(..)",
            Auth::Basic { .. } => "Auth::Basic(..)",
        })
    }
}
