//! `[http]` of the config: where `inboxd run` listens, and the names of
//! the environment variables that hold its secrets (never the secrets).

use std::net::SocketAddr;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// The env var holding the API's bearer token.
    pub token_env: String,
    /// The env var holding the HubSpot app's secret.
    pub hubspot_secret_env: String,
    /// The base URL HubSpot calls, behind a proxy (`https://inbox.example.com`).
    pub public_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    listen: String,
    #[serde(default = "default_token_env")]
    token_env: String,
    #[serde(default = "default_hubspot_secret_env")]
    hubspot_secret_env: String,
    #[serde(default)]
    public_url: Option<String>,
}

fn default_token_env() -> String {
    "INBOXD_TOKEN".into()
}

fn default_hubspot_secret_env() -> String {
    "INBOXD_HUBSPOT_SECRET".into()
}

impl RawHttp {
    pub(super) fn check(self) -> Result<HttpConfig, String> {
        let listen = self.listen.parse().map_err(|_| {
            format!(
                "[http] listen must be an address and port like \"127.0.0.1:8040\", not {:?}",
                self.listen
            )
        })?;
        for (key, name) in [
            ("token_env", &self.token_env),
            ("hubspot_secret_env", &self.hubspot_secret_env),
        ] {
            let valid =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(format!(
                    "[http] {key} must name an environment variable (letters, digits, _), not {name:?}"
                ));
            }
        }
        let public_url = match self.public_url {
            Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) => {
                return Err(format!(
                    "[http] public_url must start with https:// or http://, not {url:?}"
                ))
            }
            Some(url) => Some(url.trim_end_matches('/').to_string()),
            None => None,
        };
        Ok(HttpConfig {
            listen,
            token_env: self.token_env,
            hubspot_secret_env: self.hubspot_secret_env,
            public_url,
        })
    }
}
