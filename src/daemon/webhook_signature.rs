//! Standard Webhooks signatures (standardwebhooks.com): `v1,` + base64 of
//! HMAC-SHA256 over `id.timestamp.body`, keyed with the base64 secret after
//! its `whsec_` prefix.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A webhook's signing key, from its `whsec_...` secret.
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    pub fn from_secret(secret: &str) -> Result<SigningKey, String> {
        let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| "the secret is not \"whsec_\" followed by base64".to_string())?;
        if key.is_empty() {
            return Err("the secret is empty".into());
        }
        Ok(SigningKey(key))
    }

    /// The `webhook-signature` header's value.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body.as_bytes());
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        format!("v1,{signature}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_standard_webhooks_example_passes() {
        let key = SigningKey::from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            key.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_secret_that_is_not_base64_is_refused() {
        assert!(SigningKey::from_secret("whsec_not base64!").is_err());
        assert!(SigningKey::from_secret("whsec_").is_err());
    }
}
