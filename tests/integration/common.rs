//! A temporary inbox: the shipped config and rules in a temp dir, and
//! helpers to drive the binary the way a user would.

use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::{json, Value};
use tempfile::TempDir;

pub struct Inbox {
    dir: TempDir,
    /// Its store on PostgreSQL (`on_postgres`), dropped with it.
    database: Option<crate::pg::TestDatabase>,
}

impl Inbox {
    /// A fresh inbox with the shipped config and rules, as `inboxd init`
    /// writes them (not the checkout's `config/` and `rules/`, which an
    /// admin may have changed), without the rule tests.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in inboxd::tools::init::FILES {
            if path.starts_with("rules/tests/") {
                continue;
            }
            let target = dir.path().join(path);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            // Tests run side by side: each daemon on a port of its own.
            let text = text.replace("listen = \"127.0.0.1:8040\"", "listen = \"127.0.0.1:0\"");
            std::fs::write(target, text).unwrap();
        }
        Inbox {
            dir,
            database: None,
        }
    }

    /// A fresh inbox whose `[settings]` say `settings` (TOML lines).
    pub fn with_settings(settings: &str) -> Self {
        let inbox = Inbox::new();
        let config = inbox.read("config/inboxd.toml");
        let start = config.find("[settings]").unwrap();
        inbox.write(
            "config/inboxd.toml",
            &format!("{}[settings]\n{settings}\n", &config[..start]),
        );
        inbox
    }

    /// This inbox with its store on a PostgreSQL database of its own
    /// (created now, dropped with the inbox); `None`, said on stderr,
    /// without `INBOXD_TEST_PG_URL`.
    pub fn on_postgres(mut self, test: &str) -> Option<Inbox> {
        let database = crate::pg::TestDatabase::create(test)?;
        let config = self.read("config/inboxd.toml");
        self.write(
            "config/inboxd.toml",
            &config.replacen(
                "[store]\n",
                &format!("[store]\nurl = \"{}\"\n", database.url),
                1,
            ),
        );
        self.database = Some(database);
        Some(self)
    }

    /// Its PostgreSQL database, if it is on one.
    pub fn database(&self) -> Option<&crate::pg::TestDatabase> {
        self.database.as_ref()
    }

    /// Whether the store is on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.database.is_some()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).unwrap()
    }

    pub fn write(&self, relative: &str, text: &str) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// `inboxd` run in the inbox's directory, on its config.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::from_std(self.process());
        cmd.env("RUST_LOG", "warn");
        cmd
    }

    /// `cmd` as a plain process, for what assert_cmd does not do (a file
    /// as standard input, a child left running).
    pub fn process(&self) -> std::process::Command {
        let mut process = std::process::Command::new(assert_cmd::cargo::cargo_bin("inboxd"));
        process
            .current_dir(self.dir.path())
            .env_remove("INBOXD_CONFIG")
            .env_remove("INBOXD_STORE_URL");
        process
    }

    /// Enqueues JSON Lines; panics unless it succeeds.
    pub fn enqueue(&self, lines: &str) {
        self.cmd()
            .arg("enqueue")
            .write_stdin(lines)
            .assert()
            .success();
    }

    pub fn drain(&self) {
        self.cmd().args(["run", "--drain"]).assert().success();
    }

    /// Enqueues events and processes them.
    pub fn send(&self, events: &[Value]) {
        self.enqueue(&lines(events));
        self.drain();
    }

    pub fn export(&self) -> Value {
        let out = self.cmd().arg("export").assert().success();
        serde_json::from_slice(&out.get_output().stdout).unwrap()
    }

    /// The whole change feed (`inboxd changes`).
    pub fn changes(&self) -> Vec<Value> {
        let out = self.cmd().arg("changes").assert().success();
        String::from_utf8(out.get_output().stdout.clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn conversation(&self, id: &str) -> Value {
        find(&self.export()["conversations"], id)
    }

    pub fn ticket(&self, id: &str) -> Value {
        find(&self.export()["tickets"], id)
    }

    /// Processed events, in order, as `events --format json` lists them.
    pub fn outcomes(&self) -> Vec<Value> {
        let out = self
            .cmd()
            .args(["events", "--format", "json"])
            .assert()
            .success();
        serde_json::from_slice(&out.get_output().stdout).unwrap()
    }

    /// The outcome and reason of the last processed event with this id.
    pub fn outcome(&self, event: &str) -> (String, Option<String>) {
        let row = self
            .outcomes()
            .into_iter()
            .rev()
            .find(|r| r["id"] == event)
            .unwrap_or_else(|| panic!("event {event} was not processed"));
        (
            row["outcome"].as_str().unwrap().to_string(),
            row["reason"].as_str().map(str::to_string),
        )
    }
}

fn find(list: &Value, id: &str) -> Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no {id} in {list}"))
}

/// JSON Lines of events.
pub fn lines(events: &[Value]) -> String {
    events.iter().map(|e| format!("{e}\n")).collect()
}

/// An event: `ev("e1", "conversation.closed", json!({"conversation": "c1"}))`.
pub fn ev(id: &str, event_type: &str, fields: Value) -> Value {
    let mut event = json!({"id": id, "type": event_type});
    for (k, v) in fields.as_object().unwrap() {
        event[k] = v.clone();
    }
    event
}

pub fn conversation_created(id: &str, conversation: &str) -> Value {
    ev(
        id,
        "conversation.created",
        json!({"conversation": conversation}),
    )
}

pub fn ticket_created(id: &str, ticket: &str, conversation: &str) -> Value {
    ev(
        id,
        "ticket.created",
        json!({"ticket": ticket, "conversation": conversation}),
    )
}

pub fn associated(id: &str, ticket: &str, conversation: &str) -> Value {
    ev(
        id,
        "ticket.associated",
        json!({"ticket": ticket, "conversation": conversation}),
    )
}

pub fn ticket_status(id: &str, ticket: &str, status: &str) -> Value {
    ev(
        id,
        "ticket.status_changed",
        json!({"ticket": ticket, "status": status}),
    )
}

/// c1 and c2 on ticket T (status `new`), c3 alone on U, as events
/// `<prefix>1` to `<prefix>6`.
pub fn two_tickets_events(prefix: &str) -> Vec<Value> {
    let id = |n: u32| format!("{prefix}{n}");
    vec![
        conversation_created(&id(1), "c1"),
        conversation_created(&id(2), "c2"),
        conversation_created(&id(3), "c3"),
        ticket_created(&id(4), "T", "c1"),
        associated(&id(5), "T", "c2"),
        ticket_created(&id(6), "U", "c3"),
    ]
}

pub fn conversation_event(id: &str, event_type: &str, conversation: &str) -> Value {
    ev(id, event_type, json!({"conversation": conversation}))
}

impl Inbox {
    /// Adds a rule in its own pipeline file (run after the shipped ones).
    pub fn add_rule(&self, name: &str, on: &str, script: &str) {
        self.write(&format!("rules/{name}.rhai"), script);
        let pipeline =
            format!("[[rule]]\nname = \"{name}\"\non = [\"{on}\"]\nscript = \"{name}.rhai\"\n");
        let file = "rules/zz_test.toml";
        let existing = std::fs::read_to_string(self.path(file)).unwrap_or_default();
        self.write(file, &format!("{existing}\n{pipeline}"));
    }
}

/// A daemon (`inboxd run`) running in the background; killed on drop.
pub struct Running {
    pub child: std::process::Child,
}

impl Inbox {
    /// Starts the daemon and waits until it is up.
    pub fn start(&self, args: &[&str]) -> Running {
        let running = self.spawn(args);
        let pid = running.child.id();
        // Started once it reports itself, which it does once it watches
        // its files.
        wait_until("the daemon to start", || {
            let status = self.status();
            status["running"] == true && status["daemon"]["pid"] == pid
        });
        running
    }

    /// Starts the daemon without waiting for it.
    pub fn spawn(&self, args: &[&str]) -> Running {
        self.spawn_with_env(args, &[])
    }

    /// `spawn`, with these environment variables (and none of the
    /// daemon's secrets from the test's own environment).
    pub fn spawn_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Running {
        self.spawn_logged("daemon.log", args, env)
    }

    /// `spawn_with_env`, its log in the file `log` (several daemons).
    pub fn spawn_logged(&self, log: &str, args: &[&str], env: &[(&str, &str)]) -> Running {
        let log = std::fs::File::create(self.path(log)).unwrap();
        let child = self
            .process()
            .env_remove("INBOXD_TOKEN")
            .env_remove("INBOXD_HUBSPOT_SECRET")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .arg("run")
            .args(args)
            .stderr(log)
            .spawn()
            .unwrap();
        Running { child }
    }

    pub fn status(&self) -> Value {
        let out = self
            .cmd()
            .args(["status", "--format", "json"])
            .assert()
            .success();
        serde_json::from_slice(&out.get_output().stdout).unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("daemon.log")).unwrap_or_default()
    }

    /// The outcome of an event once the running daemon has processed it.
    pub fn wait_outcome(&self, event: &str) -> (String, Option<String>) {
        wait_until(&format!("event {event} to be processed"), || {
            self.outcomes().iter().any(|r| r["id"] == event)
        });
        self.outcome(event)
    }
}

impl Running {
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the daemon to exit; its exit code.
    pub fn wait(mut self) -> Option<i32> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon did not exit"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `done` for up to 60 s (generous: CI machines are slow).
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// What a command wrote on standard error.
pub fn stderr_of(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stderr).to_string()
}

/// `count` new conversations, each with a 200-byte subject: enough bytes
/// to fill a small "disk".
pub fn bulky_conversations(count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| {
            ev(
                &format!("e{i}"),
                "conversation.created",
                json!({"conversation": format!("c{i}"), "subject": "x".repeat(200)}),
            )
        })
        .collect()
}

/// `inboxd ARGS` in the inbox under a soft file-size limit of `blocks`
/// KiB, as a full disk would stop its writes (the signal the limit sends
/// is ignored, so writes fail instead); `prlimit` can lift it later, as
/// space coming back.
pub fn with_size_limit(inbox: &Inbox, blocks: u32, args: &str) -> std::process::Command {
    let mut command = std::process::Command::new("bash");
    command
        .current_dir(inbox.path(""))
        .env_remove("INBOXD_CONFIG")
        .arg("-c")
        .arg(format!(
            "ulimit -S -f {blocks}; trap '' XFSZ; exec '{}' {args}",
            assert_cmd::cargo::cargo_bin("inboxd").display()
        ));
    command
}
