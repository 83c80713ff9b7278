//! Who may call: a bearer token for the API, HubSpot's signature (v3) for
//! its webhook deliveries. Both compared in constant time.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far from now a HubSpot request's timestamp may be.
pub const HUBSPOT_WINDOW_MS: i64 = 5 * 60 * 1000;

/// Whether an `Authorization` header carries `token`. The scheme's name
/// is case-insensitive (RFC 9110, 11.1): clients send `bearer` too.
pub fn bearer_matches(header: Option<&str>, token: &str) -> bool {
    let Some(given) = header.and_then(bearer_credentials) else {
        return false;
    };
    // Equal lengths are compared in constant time; a length differs
    // whatever the token's content, which says nothing of it.
    given.as_bytes().ct_eq(token.as_bytes()).into()
}

/// The credentials of a `Bearer` authorization, without the spaces
/// around them.
fn bearer_credentials(header: &str) -> Option<&str> {
    let (scheme, credentials) = header.trim().split_once([' ', '\t'])?;
    scheme
        .eq_ignore_ascii_case("Bearer")
        .then(|| credentials.trim_start_matches([' ', '\t']))
}

/// Why a HubSpot delivery is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SignatureError {
    Missing(&'static str),
    BadTimestamp,
    Stale,
    Mismatch,
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureError::Missing(header) => write!(f, "missing header {header}"),
            SignatureError::BadTimestamp => {
                f.write_str("X-HubSpot-Request-Timestamp is not a time in milliseconds")
            }
            SignatureError::Stale => {
                f.write_str("X-HubSpot-Request-Timestamp is more than 5 minutes away from now")
            }
            SignatureError::Mismatch => f.write_str("the HubSpot signature does not match"),
        }
    }
}

/// A HubSpot request, as the signature covers it.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The URI HubSpot called: `public_url` + path and query, or
    /// `http://<Host><path and query>`.
    pub uri: &'a str,
    pub body: &'a [u8],
    pub signature: Option<&'a str>,
    pub timestamp: Option<&'a str>,
}

/// Checks a v3 signature: base64(HMAC-SHA256(secret, method + uri + body +
/// timestamp)), the timestamp within 5 minutes of `now_ms`.
pub fn check_hubspot_v3(
    request: &SignedRequest,
    secret: &str,
    now_ms: i64,
) -> Result<(), SignatureError> {
    let signature = request
        .signature
        .ok_or(SignatureError::Missing("X-HubSpot-Signature-v3"))?;
    let timestamp = request
        .timestamp
        .ok_or(SignatureError::Missing("X-HubSpot-Request-Timestamp"))?;
    let at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    if now_ms.abs_diff(at) > HUBSPOT_WINDOW_MS as u64 {
        return Err(SignatureError::Stale);
    }
    let expected = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| SignatureError::Mismatch)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(request.method.as_bytes());
    mac.update(decode_uri(request.uri).as_bytes());
    mac.update(request.body);
    mac.update(timestamp.as_bytes());
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// HubSpot signs the URI with these escapes decoded (its documentation of
/// signature v3).
fn decode_uri(uri: &str) -> String {
    const DECODED: [(&str, &str); 12] = [
        ("%3A", ":"),
        ("%2F", "/"),
        ("%3F", "?"),
        ("%40", "@"),
        ("%21", "!"),
        ("%24", "$"),
        ("%27", "'"),
        ("%28", "("),
        ("%29", ")"),
        ("%2A", "*"),
        ("%2C", ","),
        ("%3B", ";"),
    ];
    if !uri.contains('%') {
        return uri.to_string();
    }
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3).unwrap_or(&rest[at..]);
        match DECODED
            .iter()
            .find(|(code, _)| code.eq_ignore_ascii_case(escape))
        {
            Some((_, plain)) => out.push_str(plain),
            None => out.push_str(escape),
        }
        rest = &rest[at + escape.len()..];
    }
    out.push_str(rest);
    out
}

/// Signs as HubSpot does, for tests and examples.
pub fn sign_hubspot_v3(
    secret: &str,
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp: &str,
) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(method.as_bytes());
    mac.update(uri.as_bytes());
    mac.update(body);
    mac.update(timestamp.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    const URI: &str = "https://www.example.com/webhook_uri";
    const BODY: &str = "{'example_field':'example_value'}";

    fn request<'a>(signature: &'a str, timestamp: &'a str) -> SignedRequest<'a> {
        SignedRequest {
            method: "POST",
            uri: URI,
            body: BODY.as_bytes(),
            signature: Some(signature),
            timestamp: Some(timestamp),
        }
    }

    #[test]
    fn hubspots_published_example_passes() {
        let signature = "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw=";
        assert_eq!(
            sign_hubspot_v3(SECRET, "POST", URI, BODY.as_bytes(), "15000000"),
            signature
        );
        assert_eq!(
            check_hubspot_v3(&request(signature, "15000000"), SECRET, 15_000_000 + 1000),
            Ok(())
        );
    }

    #[test]
    fn a_stale_wrong_or_missing_signature_is_refused() {
        let good = "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw=";
        let late = 15_000_000 + HUBSPOT_WINDOW_MS + 1;
        assert_eq!(
            check_hubspot_v3(&request(good, "15000000"), SECRET, late),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check_hubspot_v3(&request(good, "15000000"), "other-secret", 15_000_000),
            Err(SignatureError::Mismatch)
        );
        let tampered = SignedRequest {
            body: b"{'example_field':'other'}",
            ..request(good, "15000000")
        };
        assert_eq!(
            check_hubspot_v3(&tampered, SECRET, 15_000_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check_hubspot_v3(&request("not base64!", "15000000"), SECRET, 15_000_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check_hubspot_v3(&request(good, "soon"), SECRET, 15_000_000),
            Err(SignatureError::BadTimestamp)
        );
        let unsigned = SignedRequest {
            signature: None,
            ..request(good, "15000000")
        };
        assert!(matches!(
            check_hubspot_v3(&unsigned, SECRET, 15_000_000),
            Err(SignatureError::Missing(_))
        ));
    }

    #[test]
    fn escapes_hubspot_decodes_are_decoded_before_signing() {
        assert_eq!(
            decode_uri("https://x.test/hook%3Fa%3Db%2Fc%20d%2"),
            "https://x.test/hook?a%3Db/c%20d%2"
        );
    }

    #[test]
    fn only_the_exact_bearer_token_passes() {
        assert!(bearer_matches(Some("Bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(Some("Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(Some("Bearer s3cretX"), "s3cret"));
        assert!(!bearer_matches(Some("Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(Some("Bearers3cret"), "s3cret"));
        assert!(!bearer_matches(Some("Bearer s3 cret"), "s3cret"));
        assert!(!bearer_matches(Some("Bearer "), "s3cret"));
        assert!(!bearer_matches(Some("s3cret"), "s3cret"));
        assert!(!bearer_matches(None, "s3cret"));
    }

    #[test]
    fn the_schemes_name_is_case_insensitive_and_spaces_around_the_token_are_not_part_of_it() {
        assert!(bearer_matches(Some("bearer s3cret"), "s3cret"));
        assert!(bearer_matches(Some("BEARER s3cret"), "s3cret"));
        assert!(bearer_matches(Some("Bearer   s3cret "), "s3cret"));
    }
}
