//! Connecting: the URL, filled in from the standard PostgreSQL environment
//! variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`,
//! `PGSSLMODE`, `PGSSLROOTCERT`) where it is silent, and TLS by rustls.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use postgres::config::SslMode;
use postgres::Client;
use rustls_pki_types::pem::PemObject;

/// How long a connection attempt may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where to connect, as given (for messages: never with its password).
#[derive(Clone)]
pub struct Target {
    config: postgres::Config,
    /// `host:port/dbname`, what errors and logs name.
    pub shown: String,
}

impl Target {
    /// Reads the URL (`postgresql://user:password@host:port/db?sslmode=require`),
    /// completed by the environment.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        Target::parse_with(url, |name| std::env::var(name).ok())
    }

    fn parse_with(url: &str, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Target> {
        let mut config = postgres::Config::from_str(url)
            .map_err(|e| anyhow::anyhow!("[store] url is not a PostgreSQL URL: {e}"))?;
        if config.get_hosts().is_empty() {
            match env("PGHOST") {
                Some(host) if host.starts_with('/') => config.host_path(host),
                Some(host) => config.host(&host),
                None => config.host("localhost"),
            };
        }
        if config.get_ports().is_empty() {
            if let Some(port) = env("PGPORT") {
                let port = port.parse().context("PGPORT is not a port number")?;
                config.port(port);
            }
        }
        if config.get_user().is_none() {
            let user = env("PGUSER")
                .or_else(|| env("USER"))
                .unwrap_or("postgres".into());
            config.user(&user);
        }
        if config.get_password().is_none() {
            if let Some(password) = env("PGPASSWORD") {
                config.password(password);
            }
        }
        if config.get_dbname().is_none() {
            if let Some(db) = env("PGDATABASE") {
                config.dbname(&db);
            }
        }
        if !url.contains("sslmode=") {
            match env("PGSSLMODE").as_deref() {
                Some("disable") => config.ssl_mode(SslMode::Disable),
                Some("require" | "verify-ca" | "verify-full") => config.ssl_mode(SslMode::Require),
                _ => config.ssl_mode(SslMode::Prefer),
            };
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        // A server that stops answering is noticed within seconds.
        config.keepalives_idle(Duration::from_secs(5));
        config.keepalives_interval(Duration::from_secs(1));
        config.keepalives_retries(3);
        config.application_name("inboxd");
        let shown = shown(&config);
        Ok(Target { config, shown })
    }

    /// A new connection.
    pub fn connect(&self) -> anyhow::Result<Client> {
        let tls = tls_connector()?;
        self.config
            .connect(tls)
            .map_err(|e| anyhow::Error::new(super::error::from_pg(e)))
            .with_context(|| format!("cannot connect to PostgreSQL at {}", self.shown))
    }
}

fn shown(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(host)) => host.clone(),
        Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

/// rustls, as libpq does it: with `PGSSLROOTCERT` set, the server's
/// certificate must chain to that CA (libpq's `verify-ca`); without it,
/// the connection is encrypted but the certificate is not checked (libpq's
/// `prefer` and `require`, and what most servers' self-signed certificates
/// allow).
fn tls_connector() -> anyhow::Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .context("rustls has no TLS version to offer")?;
    let config = match std::env::var_os("PGSSLROOTCERT") {
        Some(file) => {
            let pem = std::fs::read(&file)
                .with_context(|| format!("cannot read PGSSLROOTCERT {}", file.to_string_lossy()))?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.context("PGSSLROOTCERT holds no valid PEM certificate")?;
                roots
                    .add(cert)
                    .context("PGSSLROOTCERT holds a certificate rustls refuses")?;
            }
            builder.with_root_certificates(roots)
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified(provider))),
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(
        config.with_no_client_auth(),
    ))
}

/// Accepts the server's certificate unseen, but checks that the server
/// holds its key (the handshake signatures).
#[derive(Debug)]
struct Unverified(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str, vars: &[(&str, &str)]) -> Target {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Target::parse_with(url, |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .unwrap()
    }

    #[test]
    fn the_url_wins_over_the_environment_which_fills_what_it_leaves_out() {
        let t = parse(
            "postgresql://ann:secret@db.example.com:6543/inboxd?sslmode=require",
            &[("PGPASSWORD", "other"), ("PGHOST", "elsewhere")],
        );
        assert_eq!(t.shown, "db.example.com:6543/inboxd");
        assert_eq!(t.config.get_password(), Some(&b"secret"[..]));
        assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
        let t = parse(
            "postgresql:///",
            &[
                ("PGHOST", "db"),
                ("PGPORT", "7000"),
                ("PGUSER", "bob"),
                ("PGPASSWORD", "pw"),
                ("PGDATABASE", "helpdesk"),
                ("PGSSLMODE", "require"),
            ],
        );
        assert_eq!(t.shown, "db:7000/helpdesk");
        assert_eq!(t.config.get_user(), Some("bob"));
        assert_eq!(t.config.get_password(), Some(&b"pw"[..]));
        assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
    }

    #[test]
    fn what_is_shown_never_has_the_password() {
        let t = parse("postgresql://ann:hunter2@db/x", &[]);
        assert!(!t.shown.contains("hunter2"));
        assert!(Target::parse("mysql://x").is_err());
    }
}
