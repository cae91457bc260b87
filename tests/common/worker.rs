//! A scripted Loom worker: a real key signing real 10100 ads, 30100
//! statuses and 5101 results (and 5100 requests for a user) that a test
//! publishes when it wants, plus small event readers.

use nostr_relay_builder::prelude::*;

use super::{publish, TestRelay};

/// Tag values of an event as plain vectors.
pub fn tags(event: &Event) -> Vec<Vec<String>> {
    event.tags.iter().map(|t| t.as_slice().to_vec()).collect()
}

fn ctag(name: &str, values: &[&str]) -> Tag {
    Tag::custom(
        TagKind::Custom(name.to_string().into()),
        values.iter().map(|v| v.to_string()),
    )
}

/// Unix time now.
pub fn now() -> u64 {
    Timestamp::now().as_secs()
}

/// A Loom worker driven by the test: a real key publishing real signed
/// 10100, 30100 and 5101 events to loopback relays.
pub struct ScriptedWorker {
    pub keys: Keys,
}

/// What a scripted result says.
#[derive(Default, Clone)]
pub struct ResultSpec {
    pub exit_code: i64,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub change: Option<String>,
    pub duration: Option<f64>,
    pub at: Option<u64>,
}

impl ScriptedWorker {
    pub fn new() -> Self {
        ScriptedWorker {
            keys: Keys::generate(),
        }
    }

    pub fn hex(&self) -> String {
        self.keys.public_key().to_hex()
    }

    /// A signed advertisement from `at`.
    pub fn ad(&self, name: &str, mint: Option<&str>, at: u64) -> Event {
        let mut tags = vec![
            ctag("A", &["x86_64"]),
            ctag("S", &["act", "0.2.61"]),
            ctag("min_duration", &["10"]),
            ctag("max_duration", &["3600"]),
        ];
        if let Some(m) = mint {
            tags.push(ctag("price", &["second", "1", "sat", m]));
        }
        EventBuilder::new(
            Kind::Custom(10100),
            format!(
                r#"{{"name":"{name}","description":"test worker","max_concurrent_jobs":2,"current_queue_depth":1}}"#
            ),
        )
        .tags(tags)
        .custom_created_at(Timestamp::from(at))
        .sign_with_keys(&self.keys)
        .expect("sign")
    }

    /// A signed status for `job`, from the given key.
    pub fn status_by(
        keys: &Keys,
        job: &str,
        client: &str,
        status: &str,
        msg: &str,
        at: u64,
    ) -> Event {
        EventBuilder::new(Kind::Custom(30100), msg)
            .tags([
                ctag("d", &[job]),
                ctag("e", &[job]),
                ctag("p", &[client]),
                ctag("status", &[status]),
            ])
            .custom_created_at(Timestamp::from(at))
            .sign_with_keys(keys)
            .expect("sign")
    }

    pub fn status(&self, job: &str, client: &str, status: &str, msg: &str, at: u64) -> Event {
        Self::status_by(&self.keys, job, client, status, msg, at)
    }

    /// A signed result for `job`, from the given key.
    pub fn result_by(keys: &Keys, job: &str, client: &str, r: &ResultSpec) -> Event {
        let code = r.exit_code.to_string();
        let mut tags = vec![
            ctag("e", &[job]),
            ctag("p", &[client]),
            ctag(
                "success",
                &[if r.exit_code == 0 { "true" } else { "false" }],
            ),
            ctag("exit_code", &[&code]),
        ];
        if let Some(u) = &r.stdout {
            tags.push(ctag("stdout", &[u]));
        }
        if let Some(u) = &r.stderr {
            tags.push(ctag("stderr", &[u]));
        }
        if let Some(c) = &r.change {
            tags.push(ctag("change", &[c]));
        }
        if let Some(d) = r.duration {
            tags.push(ctag("duration", &[&d.to_string()]));
        }
        EventBuilder::new(Kind::Custom(5101), "")
            .tags(tags)
            .custom_created_at(Timestamp::from(r.at.unwrap_or_else(now)))
            .sign_with_keys(keys)
            .expect("sign")
    }

    pub fn result(&self, job: &str, client: &str, r: &ResultSpec) -> Event {
        Self::result_by(&self.keys, job, client, r)
    }

    /// Sign and publish.
    pub fn send(&self, relays: &[&TestRelay], events: &[Event]) {
        publish(&self.keys, relays, events);
    }
}

/// A signed job request by `user` for `worker`, created at `at`.
pub fn job_request(user: &Keys, worker: &str, cmd: &str, token: Option<&str>, at: u64) -> Event {
    let mut tags = vec![
        ctag("p", &[worker]),
        ctag("worker", &[worker]),
        ctag("cmd", &[cmd]),
        ctag("args", &[]),
    ];
    if let Some(t) = token {
        tags.push(ctag("payment", &[t]));
    }
    EventBuilder::new(Kind::Custom(5100), "")
        .tags(tags)
        .custom_created_at(Timestamp::from(at))
        .sign_with_keys(user)
        .expect("sign")
}
