//! A PostgreSQL database per test, on the server `INBOXD_TEST_PG_URL`
//! names (`.ci/run` sets it); without it, PostgreSQL tests are skipped
//! with a message on stderr.

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};

pub const URL_ENV: &str = "INBOXD_TEST_PG_URL";

pub struct TestDatabase {
    admin: String,
    name: String,
    /// The test database's URL.
    pub url: String,
}

/// The server's URL, or `None` after saying the test is skipped (straight
/// to stderr: the test harness does not capture that).
pub fn server(test: &str) -> Option<String> {
    match std::env::var(URL_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: {URL_ENV} is not set (PostgreSQL tests need a server)"
            );
            None
        }
    }
}

/// The URL `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let (scheme, rest) = base.split_once("://").expect("a URL");
    let authority = rest.split('/').next().unwrap_or("");
    format!("{scheme}://{authority}/{name}{query}")
}

impl TestDatabase {
    pub fn create(test: &str) -> Option<TestDatabase> {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let admin = server(test)?;
        let name = format!(
            "inboxd_test_{}_{}_{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst),
            fastrand::u32(..)
        );
        let mut client = postgres::Client::connect(&admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("{URL_ENV}: cannot connect: {e}"));
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let url = with_database(&admin, &name);
        Some(TestDatabase { admin, name, url })
    }

    /// A connection to the test database, to look inside.
    pub fn connect(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

#[test]
fn a_url_gets_the_test_database() {
    assert_eq!(
        with_database("postgresql://postgres@127.0.0.1:5432/postgres", "t1"),
        "postgresql://postgres@127.0.0.1:5432/t1"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=require", "t2"),
        "postgres://u:p@h/t2?sslmode=require"
    );
    assert_eq!(with_database("postgresql://h", "t3"), "postgresql://h/t3");
}
