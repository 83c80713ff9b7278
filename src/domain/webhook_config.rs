//! `[[webhook]]` of the config: where decisions are sent, and the name of
//! the environment variable holding each one's signing secret.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Unique; what `notify(webhook, payload)` names.
    pub name: String,
    pub url: String,
    /// The env var holding the secret: `whsec_` + base64 (Standard Webhooks).
    pub secret_env: String,
    /// Deliver the feed entries of applied events that changed something.
    pub changes: bool,
    /// Give up a message after this many attempts (`None`: never).
    pub max_attempts: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    name: String,
    url: String,
    secret_env: String,
    #[serde(default)]
    changes: bool,
    #[serde(default)]
    max_attempts: Option<u32>,
}

/// Checks every `[[webhook]]`: names unique, URLs http(s), env var names.
pub(super) fn check(raw: Vec<RawWebhook>) -> Result<Vec<WebhookConfig>, String> {
    let mut webhooks: Vec<WebhookConfig> = Vec::with_capacity(raw.len());
    for hook in raw {
        let name = &hook.name;
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && (name.bytes()).all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_name {
            return Err(format!(
                "[[webhook]] name must be 1 to 64 letters, digits, - or _, not {name:?}"
            ));
        }
        if webhooks.iter().any(|w| &w.name == name) {
            return Err(format!("[[webhook]] name {name:?} is used twice"));
        }
        check_url(&hook.url)
            .map_err(|why| format!("[[webhook]] {name}: url {:?}: {why}", hook.url))?;
        let valid_env = !hook.secret_env.is_empty()
            && (hook.secret_env.bytes()).all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid_env {
            return Err(format!(
                "[[webhook]] {name}: secret_env must name an environment variable, not {:?}",
                hook.secret_env
            ));
        }
        if hook.max_attempts == Some(0) {
            return Err(format!(
                "[[webhook]] {name}: max_attempts must be at least 1"
            ));
        }
        webhooks.push(WebhookConfig {
            name: hook.name,
            url: hook.url,
            secret_env: hook.secret_env,
            changes: hook.changes,
            max_attempts: hook.max_attempts,
        });
    }
    Ok(webhooks)
}

/// Only `http` and `https` URLs with a host.
fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("only http:// and https:// URLs are allowed".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(name: &str, url: &str) -> RawWebhook {
        RawWebhook {
            name: name.into(),
            url: url.into(),
            secret_env: "SECRET".into(),
            changes: true,
            max_attempts: None,
        }
    }

    #[test]
    fn only_http_urls_and_unique_names_pass() {
        assert!(check(vec![raw("crm", "https://crm.example.com/hooks")]).is_ok());
        assert!(check(vec![raw("crm", "http://127.0.0.1:9000/")]).is_ok());
        for bad in [
            "file:///etc/passwd",
            "ftp://x.example.com/",
            "crm.example.com/hooks",
            "https://",
        ] {
            let err = check(vec![raw("crm", bad)]).unwrap_err();
            assert!(err.contains("crm: url"), "{bad}: {err}");
        }
        let twice = check(vec![raw("a", "http://x/"), raw("a", "http://y/")]).unwrap_err();
        assert!(twice.contains("used twice"), "{twice}");
        assert!(check(vec![raw("a b", "http://x/")]).is_err());
    }
}
