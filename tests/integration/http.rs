//! The HTTP API against a running `inboxd run`, with a real HTTP client:
//! every route, and every refusal leaving the queue as it was.

use serde_json::{json, Value};

use crate::common::*;

pub const TOKEN: &str = "test-token-0123456789";
pub const SECRET: &str = "hubspot-app-secret";

/// A daemon serving HTTP on a free port, and a client for it.
pub struct Served {
    inbox: Inbox,
    _daemon: Running,
    base: String,
    agent: ureq::Agent,
}

pub struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

fn serve(http: &str, env: &[(&str, &str)]) -> Served {
    serve_with(|_| {}, http, env)
}

fn serve_with(setup: impl FnOnce(&Inbox), http: &str, env: &[(&str, &str)]) -> Served {
    let inbox = Inbox::new();
    setup(&inbox);
    serve_inbox(inbox, http, env)
}

/// The daemon of `inbox` serving HTTP (`http`: more `[http]` lines).
pub fn serve_inbox(inbox: Inbox, http: &str, env: &[(&str, &str)]) -> Served {
    let config = inbox.read("config/inboxd.toml");
    assert!(config.contains("[http]\nlisten = \"127.0.0.1:0\"\n"));
    inbox.write(
        "config/inboxd.toml",
        &config.replace("[http]\n", &format!("[http]\n{http}\n")),
    );
    let daemon = inbox.spawn_with_env(&[], env);
    let mut address = String::new();
    wait_until("the HTTP server to listen", || {
        let log = inbox.log();
        let found = log
            .lines()
            .find(|l| l.contains("HTTP API listening"))
            .and_then(|l| l.split("address=").nth(1))
            .map(|a| a.trim().to_string());
        if let Some(found) = found {
            address = found;
        }
        !address.is_empty()
    });
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let served = Served {
        inbox,
        _daemon: daemon,
        base: format!("http://{address}"),
        agent,
    };
    wait_until("the daemon to be ready", || {
        served.get("/readyz", None).status == 200
    });
    served
}

fn serve_default() -> Served {
    serve(
        "",
        &[("INBOXD_TOKEN", TOKEN), ("INBOXD_HUBSPOT_SECRET", SECRET)],
    )
}

impl Served {
    pub fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        answer(request.call())
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &[u8]) -> Answer {
        let mut request = self.agent.post(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        answer(request.send(body))
    }

    fn post_hubspot(&self, body: &str, signature: &str, timestamp: &str) -> Answer {
        let request = self
            .agent
            .post(format!("{}/v1/hubspot", self.base))
            .header("Content-Type", "application/json")
            .header("X-HubSpot-Signature-v3", signature)
            .header("X-HubSpot-Request-Timestamp", timestamp);
        answer(request.send(body.as_bytes()))
    }

    /// The status line answered to a request written by hand.
    fn raw_status(&self, head: &str) -> String {
        use std::io::{BufRead, Write};
        let address = self.base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        let mut line = String::new();
        std::io::BufReader::new(stream)
            .read_line(&mut line)
            .unwrap();
        line.trim_end().to_string()
    }

    /// The answer (status line, headers, body) to a POST whose body of
    /// `size` bytes of events comes in chunks, its length unannounced.
    fn chunked_answer(&self, path: &str, size: usize) -> String {
        use std::io::{Read, Write};
        let address = self.base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        let line = lines(&[conversation_created("big", "c1")]);
        let chunk = line.repeat(1024 * 1024 / line.len());
        let mut sent = stream.write_all(head.as_bytes());
        for _ in 0..size.div_ceil(chunk.len()) {
            // The server may answer and close before the last chunk.
            sent = sent.and_then(|()| write!(stream, "{:x}\r\n{chunk}\r\n", chunk.len()));
        }
        let _ = sent.and_then(|()| stream.write_all(b"0\r\n\r\n"));
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// The event ids the daemon has recorded an outcome for.
    fn processed(&self) -> Vec<String> {
        (self.inbox.outcomes().iter())
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect()
    }
}

fn answer(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut response = result.expect("the request reaches the server");
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    Answer { status, body }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn events_go_in_and_records_come_out() {
    events_go_in_and_records_come_out_of(serve_default());
}

/// (Also on PostgreSQL.)
pub fn events_go_in_and_records_come_out_of(served: Served) {
    let events = lines(&[
        conversation_created("e1", "c1"),
        ticket_created("e2", "T1", "c1"),
    ]);
    let posted = served.post("/v1/events", Some(TOKEN), events.as_bytes());
    assert_eq!(
        (posted.status, posted.json()),
        (202, json!({"enqueued": 2}))
    );
    served.inbox.wait_outcome("e2");

    let export = served.inbox.export();
    let conversation = served.get("/v1/conversations/c1", Some(TOKEN));
    assert_eq!(conversation.status, 200);
    assert_eq!(conversation.json(), export["conversations"][0]);
    let ticket = served.get("/v1/tickets/T1", Some(TOKEN));
    assert_eq!(ticket.status, 200);
    assert_eq!(ticket.json(), export["tickets"][0]);
    let event = served.get("/v1/events/e2", Some(TOKEN));
    assert_eq!(
        event.json(),
        json!({"id": "e2", "state": "applied", "reason": null})
    );

    // A JSON array is a body too; a rejected event says why.
    let array = json!([ticket_created("e3", "T2", "c1")]).to_string();
    let posted = served.post("/v1/events", Some(TOKEN), array.as_bytes());
    assert_eq!(posted.status, 202);
    served.inbox.wait_outcome("e3");
    let event = served.get("/v1/events/e3", Some(TOKEN)).json();
    assert_eq!(event["state"], "rejected");
    assert!(event["reason"].as_str().unwrap().contains("P2"), "{event}");

    for unknown in [
        "/v1/conversations/nope",
        "/v1/tickets/nope",
        "/v1/events/nope",
    ] {
        let answer = served.get(unknown, Some(TOKEN));
        assert_eq!(answer.status, 404, "{unknown}");
        assert!(answer.json()["error"].is_string());
        // An unknown id of 10,000 characters is not echoed whole.
        let huge = format!("{unknown}{}", "x".repeat(10_000));
        let answer = served.get(&huge, Some(TOKEN));
        assert_eq!(answer.status, 404, "{unknown}");
        let error = answer.json()["error"].as_str().unwrap().to_string();
        assert!(
            error.len() < 200 && error.contains("10004 bytes"),
            "{error}"
        );
    }
}

#[test]
fn refused_requests_queue_nothing() {
    let served = serve_default();
    let good = lines(&[conversation_created("ok", "c1")]);
    let bad_token = served.post("/v1/events", Some("wrong"), good.as_bytes());
    let no_token = served.post("/v1/events", None, good.as_bytes());
    assert_eq!((bad_token.status, no_token.status), (401, 401));
    let read = served.get("/v1/conversations/c1", Some("wrong"));
    assert_eq!(read.status, 401);

    let bad_line = format!(
        "{}\n{{\"id\": \"x2\", \"type\": \"conversation.exploded\"}}\n",
        lines(&[conversation_created("x1", "c9")]).trim()
    );
    let refused = served.post("/v1/events", Some(TOKEN), bad_line.as_bytes());
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["line"], 2);
    let bad_array = b"[{\"id\": \"x3\", \"type\": \"conversation.created\", \"conversation\": \"c9\"},\n {\"id\": 4}]";
    let refused = served.post("/v1/events", Some(TOKEN), bad_array);
    assert_eq!(
        (refused.status, refused.json()["line"].clone()),
        (400, json!(2))
    );
    let refused = served.post("/v1/events", Some(TOKEN), b"{not json");
    assert_eq!(refused.status, 400);

    // Refused on its announced length, before its body is read.
    let status = served.raw_status(&format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n",
        9 * 1024 * 1024
    ));
    assert_eq!(status, "HTTP/1.1 413 Payload Too Large");
    // The same, said the same way, when it comes in chunks.
    let chunked = served.chunked_answer("/v1/events", 9 * 1024 * 1024);
    assert!(
        chunked.starts_with("HTTP/1.1 413") && chunked.contains("the body is larger than 8 MiB"),
        "{}",
        &chunked[..chunked.len().min(300)]
    );

    // Only the one good request was queued.
    let posted = served.post("/v1/events", Some(TOKEN), good.as_bytes());
    assert_eq!(posted.status, 202);
    served.inbox.wait_outcome("ok");
    assert_eq!(served.processed(), ["ok"]);
}

fn hubspot_delivery() -> String {
    json!([
        {"eventId": 10, "subscriptionType": "conversation.creation", "objectId": 501, "occurredAt": 1700000000000u64},
        {"eventId": 11, "subscriptionType": "conversation.newMessage", "objectId": 501}
    ])
    .to_string()
}

#[test]
fn hubspot_deliveries_are_checked_by_their_signature() {
    let served = serve_default();
    let body = hubspot_delivery();
    let uri = format!("{}/v1/hubspot", served.base);
    let sign = |at: i64, secret: &str| {
        let timestamp = at.to_string();
        let signature =
            inboxd::http::sign_hubspot_v3(secret, "POST", &uri, body.as_bytes(), &timestamp);
        (signature, timestamp)
    };

    let (signature, timestamp) = sign(now_ms(), "not-the-secret");
    assert_eq!(
        served.post_hubspot(&body, &signature, &timestamp).status,
        401
    );
    let (signature, timestamp) = sign(now_ms() - 6 * 60 * 1000, SECRET);
    let stale = served.post_hubspot(&body, &signature, &timestamp);
    assert_eq!(stale.status, 401);
    assert!(stale.json()["error"]
        .as_str()
        .unwrap()
        .contains("5 minutes"));
    let (signature, timestamp) = sign(now_ms(), SECRET);
    let tampered = body.replace("501", "502");
    assert_eq!(
        served
            .post_hubspot(&tampered, &signature, &timestamp)
            .status,
        401
    );
    let unsigned = served.post("/v1/hubspot", None, body.as_bytes());
    assert_eq!(unsigned.status, 401);

    let delivered = served.post_hubspot(&body, &signature, &timestamp);
    assert_eq!(delivered.status, 200, "{}", delivered.body);
    assert_eq!(delivered.json(), json!({"enqueued": 1, "skipped": 1}));
    served.inbox.wait_outcome("hubspot-10");
    assert_eq!(served.processed(), ["hubspot-10"]);
    let metrics = served.get("/metrics", None).body;
    assert!(metrics.contains("inboxd_hubspot_notifications_skipped_total 1"));
}

#[test]
fn hubspot_signs_the_public_url_behind_a_proxy() {
    let served = serve(
        "public_url = \"https://inbox.example.com/\"",
        &[("INBOXD_TOKEN", TOKEN), ("INBOXD_HUBSPOT_SECRET", SECRET)],
    );
    let body = hubspot_delivery();
    let timestamp = now_ms().to_string();
    let sign =
        |uri: &str| inboxd::http::sign_hubspot_v3(SECRET, "POST", uri, body.as_bytes(), &timestamp);
    let local = sign(&format!("{}/v1/hubspot", served.base));
    assert_eq!(served.post_hubspot(&body, &local, &timestamp).status, 401);
    let public = sign("https://inbox.example.com/v1/hubspot");
    assert_eq!(served.post_hubspot(&body, &public, &timestamp).status, 200);
}

#[test]
fn without_secrets_in_the_environment_the_api_refuses_and_says_why() {
    let served = serve("", &[]);
    let events = lines(&[conversation_created("e1", "c1")]);
    assert_eq!(
        served
            .post("/v1/events", Some(""), events.as_bytes())
            .status,
        401
    );
    assert_eq!(served.get("/v1/events/e1", Some("x")).status, 401);
    let body = hubspot_delivery();
    let timestamp = now_ms().to_string();
    let signature = inboxd::http::sign_hubspot_v3(
        "",
        "POST",
        &format!("{}/v1/hubspot", served.base),
        body.as_bytes(),
        &timestamp,
    );
    assert_eq!(
        served.post_hubspot(&body, &signature, &timestamp).status,
        401
    );
    let log = served.inbox.log();
    assert!(log.contains("INBOXD_TOKEN is not set"), "{log}");
    assert!(log.contains("INBOXD_HUBSPOT_SECRET is not set"), "{log}");
    // Probes need no token.
    assert_eq!(served.get("/healthz", None).status, 200);
    assert_eq!(served.get("/readyz", None).status, 200);
    assert!(served.processed().is_empty());
}

#[test]
fn dry_run_over_http_matches_the_cli_and_changes_nothing() {
    let served = serve_default();
    let setup = lines(&[
        conversation_created("e1", "c1"),
        ticket_created("e2", "T1", "c1"),
    ]);
    served.post("/v1/events", Some(TOKEN), setup.as_bytes());
    served.inbox.wait_outcome("e2");
    let trial = lines(&[ticket_status("e3", "T1", "closed")]);
    let answer = served.post("/v1/dry-run", Some(TOKEN), trial.as_bytes());
    assert_eq!(answer.status, 200, "{}", answer.body);
    let cli = served
        .inbox
        .cmd()
        .args(["dry-run", "--format", "json"])
        .write_stdin(trial.clone())
        .assert()
        .success();
    let cli: Value = serde_json::from_slice(&cli.get_output().stdout).unwrap();
    assert_eq!(answer.json(), cli);
    assert_eq!(answer.json()[0]["outcome"], "applied");
    assert_eq!(served.inbox.ticket("T1")["status"], "new");
}

#[test]
fn probes_and_metrics_need_no_token() {
    let served = serve_default();
    served.post(
        "/v1/events",
        Some(TOKEN),
        lines(&[
            conversation_event("e1", "conversation.closed", "nope"),
            conversation_created("e2", "c2"),
            ticket_created("e3", "T2", "c2"),
        ])
        .as_bytes(),
    );
    served.inbox.wait_outcome("e3");
    assert_eq!(served.get("/healthz", None).status, 200);
    assert_eq!(served.get("/readyz", None).json(), json!({"ready": true}));
    let metrics = served.get("/metrics", None);
    assert_eq!(metrics.status, 200);
    for name in [
        "inboxd_events_processed_total{outcome=\"rejected\"} 1",
        "inboxd_queue_depth",
        "inboxd_event_duration_seconds_bucket",
        "inboxd_rule_runs_total{rule=\"ticket-gate\"} 1",
        "inboxd_reloads_total{result=\"refused\"} 0",
        "inboxd_store_up 1",
        "inboxd_http_requests_total{route=\"/v1/events\",status=\"202\"} 1",
    ] {
        assert!(
            metrics.body.contains(name),
            "{name} not in\n{}",
            metrics.body
        );
    }
    assert_eq!(served.get("/nowhere", None).status, 404);
}

/// A producer's request goes to the queue in its own transaction: it is
/// answered while the engine is still inside a long event, and the event
/// it brought is `queued` meanwhile.
#[test]
fn a_post_does_not_wait_for_the_engine() {
    let served = serve_with(
        |inbox| {
            // Slow by its string operations (the operation count stays
            // low): runs to the 2 s limit of a run.
            let script =
                "let s = \"x\"; for i in 0..15 { s += s; }\nloop { s.replace(\"x\", \"y\"); }";
            inbox.add_rule("slow", "conversation.closed", script)
        },
        "",
        &[("INBOXD_TOKEN", TOKEN), ("INBOXD_HUBSPOT_SECRET", SECRET)],
    );
    let setup = lines(&[conversation_created("e1", "c1")]);
    served.post("/v1/events", Some(TOKEN), setup.as_bytes());
    served.inbox.wait_outcome("e1");
    let slow = lines(&[conversation_event("slow", "conversation.closed", "c1")]);
    served.post("/v1/events", Some(TOKEN), slow.as_bytes());
    let next = lines(&[conversation_created("next", "c2")]);
    let posted = served.post("/v1/events", Some(TOKEN), next.as_bytes());
    assert_eq!(posted.status, 202);
    let state = served.get("/v1/events/next", Some(TOKEN)).json();
    assert_eq!(state["state"], "queued");
    assert!(!served.processed().contains(&"next".to_string()));
    let (outcome, reason) = served.inbox.wait_outcome("slow");
    assert_eq!(outcome, "failed");
    let reason = reason.unwrap();
    assert!(
        reason.contains("longer than 2 s"),
        "not run to its limit: {reason}"
    );
    served.inbox.wait_outcome("next");
}

/// The `curl` examples of the README's "HTTP API" section, run in order
/// against a daemon (reads retried until the events are processed).
#[test]
fn the_readme_curl_examples_work() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("\n## HTTP API").expect("an HTTP API section");
    let section = &readme[start + 1..];
    let section = &section[..section[3..]
        .find("\n## ")
        .map_or(section.len(), |end| end + 3)];
    let commands: Vec<&str> = section.lines().filter(|l| l.starts_with("curl ")).collect();
    assert!(commands.len() >= 8, "{commands:?}");
    let served = serve_default();
    for command in commands {
        let command = command.replace("http://127.0.0.1:8040", &served.base);
        let run = || {
            std::process::Command::new("bash")
                .arg("-c")
                .arg(&command)
                .env("INBOXD_TOKEN", TOKEN)
                .output()
                .unwrap()
        };
        let mut out = run();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !out.status.success() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
            out = run();
        }
        assert!(
            out.status.success(),
            "README example failed: {command}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        served.inbox.ticket("HT1")["status"],
        "new",
        "the dry-run changed nothing"
    );
}

/// Odd bytes, truncated JSON, deep nesting, huge numbers: each answered
/// with a refusal, none taking the daemon down or queueing anything.
#[test]
fn no_route_falls_over_on_odd_input() {
    let served = serve_default();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let valid = conversation_created("fuzz", "c1").to_string();
    let mut bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"[".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        "[".repeat(10_000).into_bytes(),
        format!("{{\"id\": 1e999999, \"type\": \"{}\"}}", "x".repeat(100)).into_bytes(),
        b"\xff\xfe\x00garbage".to_vec(),
        valid.replace("c1", "c\u{0}1").into_bytes(),
    ];
    for _ in 0..40 {
        let mut body = valid.clone().into_bytes();
        let cut = (next() as usize) % body.len();
        body.truncate(cut);
        let at = (next() as usize) % (body.len() + 1);
        body.insert(at, (next() % 256) as u8);
        bodies.push(body);
    }
    for body in &bodies {
        for path in ["/v1/events", "/v1/dry-run", "/v1/hubspot"] {
            let answer = served.post(path, Some(TOKEN), body);
            assert!(
                [200, 202, 400, 401].contains(&answer.status),
                "{path} answered {} to {:?}: {}",
                answer.status,
                String::from_utf8_lossy(body),
                answer.body
            );
        }
    }
    for path in [
        "/v1/events/%00",
        "/v1/tickets/%FF%FE",
        "/v1/conversations/a%2Fb",
    ] {
        let status = served.get(path, Some(TOKEN)).status;
        assert!([400, 404].contains(&status), "{path}: {status}");
    }
    assert_eq!(served.get("/healthz", None).status, 200);
    // Only bodies that were whole valid events could have been queued.
    let posted = served.post("/v1/events", Some(TOKEN), valid.as_bytes());
    assert_eq!(posted.status, 202);
    served.inbox.wait_outcome("fuzz");
    let processed = served.processed();
    assert!(processed.iter().all(|id| id == "fuzz"), "{processed:?}");
}

#[test]
fn every_refusal_is_a_json_error_and_the_schemes_name_is_read_in_any_case() {
    let served = serve_default();
    // An id that is not UTF-8 once decoded: the token first, then a 400.
    assert_eq!(served.get("/v1/events/%FF%FE", None).status, 401);
    let odd = served.get("/v1/events/%FF%FE", Some(TOKEN));
    assert_eq!(odd.status, 400);
    assert!(
        odd.json()["error"].as_str().unwrap().contains("UTF-8"),
        "{}",
        odd.body
    );
    // A method a route does not take: 405, saying which it takes.
    let put = served
        .agent
        .put(format!("{}/v1/events", served.base))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send(b"{}".as_slice())
        .expect("the request reaches the server");
    assert_eq!(put.status().as_u16(), 405);
    assert_eq!(put.headers()["allow"], "POST");
    let mut put = put;
    let body: Value = serde_json::from_str(&put.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["error"], "PUT is not allowed on /v1/events");
    // `bearer`, as some clients write it (RFC 9110: case-insensitive).
    let lower = served
        .agent
        .get(format!("{}/v1/events/nothing", served.base))
        .header("Authorization", format!("bearer {TOKEN}"))
        .call()
        .expect("the request reaches the server");
    assert_eq!(lower.status().as_u16(), 404);
}

#[test]
fn the_feed_over_http_pages_and_long_polls() {
    let served = serve_default();
    let events = lines(&[
        conversation_created("e1", "c1"),
        conversation_created("e2", "c2"),
    ]);
    served.post("/v1/events", Some(TOKEN), events.as_bytes());
    served.inbox.wait_outcome("e2");
    let first = served
        .get("/v1/changes?after=0&limit=1", Some(TOKEN))
        .json();
    assert_eq!(first["changes"].as_array().unwrap().len(), 1);
    assert_eq!(first["changes"][0]["event"], "e1");
    let next = first["next"].as_i64().unwrap();
    let rest = served
        .get(&format!("/v1/changes?after={next}"), Some(TOKEN))
        .json();
    assert_eq!(rest["changes"][0]["event"], "e2");
    let end = rest["next"].as_i64().unwrap();
    assert_eq!(served.inbox.changes().len(), 2);

    // Nothing newer: an empty page at once, or a wait until something is.
    let empty = served
        .get(&format!("/v1/changes?after={end}"), Some(TOKEN))
        .json();
    assert_eq!(empty, json!({"changes": [], "next": end}));
    let base = served.base.clone();
    let waiting = std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        answer(
            agent
                .get(format!("{base}/v1/changes?after={end}&wait=20"))
                .header("Authorization", format!("Bearer {TOKEN}"))
                .call(),
        )
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!waiting.is_finished(), "the request waits for news");
    let later = lines(&[conversation_created("e3", "c3")]);
    served.post("/v1/events", Some(TOKEN), later.as_bytes());
    let news = waiting.join().unwrap().json();
    assert_eq!(news["changes"][0]["event"], "e3");

    // A fraction of a second is a wait too.
    let started = std::time::Instant::now();
    let quiet = served.get(
        &format!("/v1/changes?after={}&wait=0.4", news["next"]),
        Some(TOKEN),
    );
    assert_eq!(quiet.status, 200, "{}", quiet.body);
    assert_eq!(quiet.json()["changes"], json!([]));
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));

    for bad in [
        "?limit=0",
        "?limit=5000",
        "?wait=999",
        "?wait=-1",
        "?wait=NaN",
        "?wait=inf",
        "?after=x",
        "?color=red",
    ] {
        let answer = served.get(&format!("/v1/changes{bad}"), Some(TOKEN));
        assert_eq!(answer.status, 400, "{bad}: {}", answer.body);
    }
    assert_eq!(served.get("/v1/changes", None).status, 401);
}

/// A port already taken does not stop the daemon: it processes events,
/// says why it has no HTTP, and listens once the port is free.
#[test]
fn a_taken_port_leaves_the_daemon_running_and_it_listens_later() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let inbox = Inbox::new();
    let config = inbox.read("config/inboxd.toml");
    inbox.write(
        "config/inboxd.toml",
        &config.replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        ),
    );
    let _daemon = inbox.spawn_with_env(&[], &[("INBOXD_TOKEN", TOKEN)]);
    inbox.enqueue(&lines(&[conversation_created("e1", "c1")]));
    inbox.wait_outcome("e1");
    wait_until("the error to be logged", || {
        inbox.log().contains("cannot listen on")
    });
    drop(taken);
    wait_until("the API to listen", || {
        inbox.log().contains("HTTP API listening")
    });
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let health = agent
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .call()
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
}
