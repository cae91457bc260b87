//! The Loom wire format: event kinds, the kind 5100 job request and its
//! tags, in the order the spec (`loom-protocol.md`) fixes. Pure: no IO, no
//! keys, no clocks; building an [`EventBuilder`] and reading one back.

use nostr_sdk::prelude::*;

/// Kind 5100: job request (client).
pub const KIND_JOB_REQUEST: u16 = 5100;
/// Kind 5101: job result (worker).
pub const KIND_JOB_RESULT: u16 = 5101;
/// Kind 30100: job status (worker, addressable, `d` = job id).
pub const KIND_JOB_STATUS: u16 = 30100;
/// Kind 10100: worker advertisement (worker, replaceable).
pub const KIND_WORKER_AD: u16 = 10100;
/// Kind 5401: Budabit "Hive CI" workflow run, optional parent of a job.
pub const KIND_WORKFLOW_RUN: u16 = 5401;

/// The kind 5100 as a nostr [`Kind`].
pub fn job_request_kind() -> Kind {
    Kind::Custom(KIND_JOB_REQUEST)
}

/// Who the `p` tag addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PTag {
    /// The worker (the default: workers subscribe with `#p = self`).
    Worker,
    /// The requesting user (the first Budabit implementation).
    SelfKey,
    /// An explicit pubkey.
    Key(PublicKey),
}

impl PTag {
    /// Resolve to the pubkey that goes in the tag.
    pub fn resolve(&self, worker: &PublicKey, me: &PublicKey) -> PublicKey {
        match self {
            PTag::Worker => *worker,
            PTag::SelfKey => *me,
            PTag::Key(pk) => *pk,
        }
    }
}

/// A job request as jobctl builds it, before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    /// The worker that should run the job.
    pub worker: PublicKey,
    /// The pubkey that goes in the `p` tag (usually the worker).
    pub p: PublicKey,
    /// The command, e.g. `act`.
    pub cmd: String,
    /// Every argument, in order, held in one `args` tag.
    pub args: Vec<String>,
    /// The Cashu token; `None` for an unpaid job (no `payment` tag at all).
    pub payment: Option<String>,
    /// Optional parent event (e.g. a 5401 workflow run).
    pub parent: Option<EventId>,
    /// Plain environment variables.
    pub env: Vec<(String, String)>,
    /// Secret environment variables: (key, NIP-44 ciphertext to the worker).
    pub secrets: Vec<(String, String)>,
    /// Human description; empty by default.
    pub content: String,
}

fn custom(name: &'static str, values: Vec<String>) -> Tag {
    Tag::custom(TagKind::Custom(name.into()), values)
}

impl JobRequest {
    /// The tags, in the spec's order: p, worker, cmd, args, payment, then
    /// e, env, secret.
    pub fn tags(&self) -> Vec<Tag> {
        let mut tags = Vec::with_capacity(5 + self.env.len() + self.secrets.len() + 1);
        tags.push(Tag::public_key(self.p));
        tags.push(custom("worker", vec![self.worker.to_hex()]));
        tags.push(custom("cmd", vec![self.cmd.clone()]));
        tags.push(custom("args", self.args.clone()));
        if let Some(token) = &self.payment {
            tags.push(custom("payment", vec![token.clone()]));
        }
        if let Some(parent) = self.parent {
            tags.push(Tag::event(parent));
        }
        for (k, v) in &self.env {
            tags.push(custom("env", vec![k.clone(), v.clone()]));
        }
        for (k, v) in &self.secrets {
            tags.push(custom("secret", vec![k.clone(), v.clone()]));
        }
        tags
    }

    /// An unsigned builder for the kind 5100 event.
    pub fn to_builder(&self) -> EventBuilder {
        // `allow_self_tagging`: with `--p self` the p tag names the signer,
        // which nostr's builder would otherwise silently drop.
        EventBuilder::new(job_request_kind(), self.content.clone())
            .tags(self.tags())
            .allow_self_tagging()
    }

    /// Read a job request back from a kind 5100 event. Returns `None` when
    /// the event is not a well-formed job request.
    pub fn from_event(event: &Event) -> Option<JobRequest> {
        if event.kind != job_request_kind() {
            return None;
        }
        let mut req = JobRequest {
            worker: event.pubkey,
            p: event.pubkey,
            cmd: String::new(),
            args: Vec::new(),
            payment: None,
            parent: None,
            env: Vec::new(),
            secrets: Vec::new(),
            content: event.content.clone(),
        };
        let (mut worker, mut p) = (None, None);
        for tag in event.tags.iter() {
            let s = tag.as_slice();
            let value = s.get(1).cloned();
            match (s[0].as_str(), value) {
                ("p", Some(v)) if p.is_none() => p = PublicKey::from_hex(&v).ok(),
                ("worker", Some(v)) => worker = PublicKey::from_hex(&v).ok(),
                ("cmd", Some(v)) => req.cmd = v,
                ("args", _) => req.args = s[1..].to_vec(),
                ("payment", Some(v)) => req.payment = Some(v),
                ("e", Some(v)) => req.parent = EventId::from_hex(&v).ok(),
                ("env", Some(k)) => req.env.push((k, s.get(2).cloned().unwrap_or_default())),
                ("secret", Some(k)) => req.secrets.push((k, s.get(2).cloned().unwrap_or_default())),
                _ => {}
            }
        }
        req.worker = worker.or(p)?;
        req.p = p.unwrap_or(req.worker);
        Some(req)
    }
}

/// A job's state, normalised from the many spellings workers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// In the journal, but no relay has accepted it yet (local only).
    Unpublished,
    /// Published; no worker has said anything yet.
    Pending,
    /// The worker accepted it and queued it.
    Queued,
    /// The worker is running it.
    Running,
    /// Finished with success (terminal).
    Success,
    /// Finished with failure (terminal).
    Failed,
    /// Cancelled (terminal).
    Cancelled,
    /// The worker skipped it and will not run it (terminal; Budabit's word).
    Skipped,
    /// The worker reported an error (terminal: no result will follow).
    Error,
    /// A status value jobctl does not know.
    Unknown,
}

impl JobState {
    /// Normalise a worker's `status` tag value. Unknown values are
    /// [`JobState::Unknown`], never an error.
    pub fn parse(s: &str) -> JobState {
        match s.trim().to_ascii_lowercase().as_str() {
            "pending" => JobState::Pending,
            "unpublished" => JobState::Unpublished,
            "queued" | "waiting" => JobState::Queued,
            "running" | "in_progress" | "in-progress" | "started" | "processing" => {
                JobState::Running
            }
            "success" | "succeeded" | "completed" | "done" => JobState::Success,
            // swarmstr's `timeout`: the run hit its time limit, a failure.
            "failed" | "failure" | "timeout" | "timed_out" | "timed-out" => JobState::Failed,
            "cancelled" | "canceled" => JobState::Cancelled,
            "skipped" => JobState::Skipped,
            "error" => JobState::Error,
            _ => JobState::Unknown,
        }
    }

    /// Success, failed, cancelled, skipped (and error: the worker gave up).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Success
                | JobState::Failed
                | JobState::Cancelled
                | JobState::Skipped
                | JobState::Error
        )
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Unpublished => "unpublished",
            JobState::Pending => "pending",
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Success => "success",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Skipped => "skipped",
            JobState::Error => "error",
            JobState::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn first_value<'a>(event: &'a Event, name: &str) -> Option<&'a str> {
    event.tags.iter().find_map(|t| {
        let s = t.as_slice();
        (s.len() >= 2 && s[0] == name).then(|| s[1].as_str())
    })
}

/// A kind 30100 status update from a worker.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StatusUpdate {
    /// The job (the request's event id).
    pub job: EventId,
    /// Who signed it.
    pub author: PublicKey,
    /// Normalised state.
    pub state: JobState,
    /// The status value as sent.
    pub raw: String,
    /// Human message (`content`).
    pub message: String,
    /// When the worker says it happened.
    pub at: Timestamp,
    /// The status event's own id.
    pub event_id: EventId,
    /// Place in the worker's queue (swarmstr's `queue_position` tag).
    pub queue_position: Option<u64>,
    /// Why it failed: an `error` tag, else "timed out" for `timeout`.
    pub reason: Option<String>,
}

/// Whether a status word is one of the time-limit spellings.
fn is_timeout_word(raw: &str) -> bool {
    matches!(
        raw.trim().to_ascii_lowercase().as_str(),
        "timeout" | "timed_out" | "timed-out"
    )
}

impl StatusUpdate {
    /// Read a status event; `None` if it is not a well-formed one.
    pub fn from_event(event: &Event) -> Option<Self> {
        if event.kind != Kind::Custom(KIND_JOB_STATUS) {
            return None;
        }
        let job = first_value(event, "d")
            .or_else(|| first_value(event, "e"))
            .and_then(|v| EventId::from_hex(v).ok())?;
        let raw = first_value(event, "status").unwrap_or("").to_string();
        // `unpublished` is jobctl's own local state, not a worker's word.
        let state = match JobState::parse(&raw) {
            JobState::Unpublished => JobState::Unknown,
            s => s,
        };
        let reason = first_value(event, "error")
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .or_else(|| is_timeout_word(&raw).then(|| "timed out".to_string()));
        Some(StatusUpdate {
            job,
            author: event.pubkey,
            state,
            queue_position: first_value(event, "queue_position")
                .and_then(|v| v.trim().parse().ok()),
            reason,
            raw,
            message: event.content.clone(),
            at: event.created_at,
            event_id: event.id,
        })
    }
}

/// A kind 5101 result from a worker.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobResult {
    /// The job.
    pub job: EventId,
    /// Who signed it.
    pub author: PublicKey,
    /// `success=true` or `exit_code=0`.
    pub success: bool,
    /// The command's exit code.
    pub exit_code: Option<i64>,
    /// stdout: a URL, or (some workers) the text itself; see [`is_url`].
    pub stdout: Option<String>,
    /// stderr: a URL, or the text itself.
    pub stderr: Option<String>,
    /// The worker's reason for a failure (`error` tag), e.g.
    /// "Pubkey not whitelisted for this worker".
    pub error: Option<String>,
    /// Change token handed back (never print it unredacted).
    #[serde(skip)]
    pub change: Option<String>,
    /// Run time in seconds.
    pub duration: Option<f64>,
    /// When.
    pub at: Timestamp,
    /// The result event's own id.
    pub event_id: EventId,
}

impl JobResult {
    /// Read a result event; `None` if it is not a well-formed one.
    pub fn from_event(event: &Event) -> Option<Self> {
        if event.kind != Kind::Custom(KIND_JOB_RESULT) {
            return None;
        }
        let job = first_value(event, "e").and_then(|v| EventId::from_hex(v).ok())?;
        let exit_code = first_value(event, "exit_code").and_then(|v| v.trim().parse().ok());
        let success_tag = first_value(event, "success").map(|v| v.trim() == "true");
        let success = success_tag == Some(true) || exit_code == Some(0);
        let url = |name| {
            first_value(event, name)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        Some(JobResult {
            job,
            author: event.pubkey,
            success,
            exit_code,
            stdout: url("stdout"),
            stderr: url("stderr"),
            error: first_value(event, "error")
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            change: url("change"),
            duration: first_value(event, "duration").and_then(parse_seconds),
            at: event.created_at,
            event_id: event.id,
        })
    }

    /// The state this result puts the job in.
    pub fn state(&self) -> JobState {
        if self.success {
            JobState::Success
        } else {
            JobState::Failed
        }
    }
}

/// A `duration` in seconds: `12`, `12.5` or `12.5s`; never negative,
/// NaN or infinite.
fn parse_seconds(v: &str) -> Option<f64> {
    let t = v.trim();
    let t = t.strip_suffix('s').unwrap_or(t).trim();
    t.parse::<f64>().ok().filter(|d| d.is_finite() && *d >= 0.0)
}

/// Whether a result's `stdout`/`stderr` value is a URL to fetch (else it
/// is the output itself, inline).
pub fn is_url(v: &str) -> bool {
    let t = v.trim().to_ascii_lowercase();
    (t.starts_with("http://") || t.starts_with("https://")) && !t.contains(char::is_whitespace)
}

/// One `price` tag of an advertisement.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Price {
    /// Billing period as sent (e.g. `second`); empty in swarmstr's layout,
    /// which has none.
    pub period: String,
    /// Rate per period.
    pub rate: f64,
    /// Unit (e.g. `sat`).
    pub unit: String,
    /// Mint URL.
    pub mint: String,
}

/// A kind 10100 worker advertisement.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WorkerAd {
    /// The worker.
    pub pubkey: PublicKey,
    /// Name from the content JSON.
    pub name: String,
    /// Description.
    pub description: String,
    /// Max concurrent jobs.
    pub max_concurrent_jobs: Option<u64>,
    /// Current queue depth.
    pub current_queue_depth: Option<u64>,
    /// `A` tag.
    pub architecture: Option<String>,
    /// `S` tags: (software, version).
    pub software: Vec<(String, String)>,
    /// One per accepted mint; empty for a free worker.
    pub prices: Vec<Price>,
    /// `min_duration` seconds.
    pub min_duration: Option<u64>,
    /// `max_duration` seconds.
    pub max_duration: Option<u64>,
    /// Who may run jobs for free, and who at all (boxed: rarely set).
    pub access: Box<Access>,
    /// When it was published.
    pub at: Timestamp,
}

/// A worker's access-control fields, from tags or the content JSON (tags
/// win). Read and shown; the freelist is fetched by
/// [`crate::follow::free_for`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Access {
    /// `is_whitelisted`: the worker runs jobs only for listed keys.
    pub is_whitelisted: Option<bool>,
    /// `whitelist_event`: a NIP-51 list of the allowed keys.
    pub whitelist_event: Option<String>,
    /// `freelist_event`: a NIP-51 list of the keys that run for free.
    pub freelist_event: Option<String>,
    /// `freelist_timeout`: the longest free run, in seconds.
    pub freelist_timeout: Option<u64>,
}

/// Where a NIP-51 list lives: an address (`naddr1...` or
/// `kind:pubkey:d`, newest version wins) or one event (`nevent1...`,
/// `note1...` or hex id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListPointer {
    /// A replaceable or addressable list.
    Address(Coordinate),
    /// One fixed event.
    Event(EventId),
}

impl ListPointer {
    /// Parse any of the forms; `None` when it is none of them.
    pub fn parse(s: &str) -> Option<ListPointer> {
        let t = s.trim();
        let t = t.strip_prefix("nostr:").unwrap_or(t);
        if t.starts_with("nevent1") {
            return Nip19Event::from_bech32(t)
                .ok()
                .map(|n| ListPointer::Event(n.event_id));
        }
        if t.starts_with("note1") || (t.len() == 64 && !t.contains(':')) {
            return EventId::parse(t).ok().map(ListPointer::Event);
        }
        Coordinate::parse(t).ok().map(ListPointer::Address)
    }

    /// The filter that fetches the list.
    pub fn filter(&self) -> Filter {
        match self {
            ListPointer::Address(c) => {
                let f = Filter::new().kind(c.kind).author(c.public_key);
                if c.identifier.is_empty() {
                    f.limit(4)
                } else {
                    f.identifier(c.identifier.clone()).limit(4)
                }
            }
            ListPointer::Event(id) => Filter::new().id(*id).limit(1),
        }
    }

    /// Whether `e` is (a version of) the list.
    pub fn matches(&self, e: &Event) -> bool {
        match self {
            ListPointer::Event(id) => e.id == *id,
            ListPointer::Address(c) => {
                e.kind == c.kind
                    && e.pubkey == c.public_key
                    && (c.identifier.is_empty()
                        || e.tags.identifier() == Some(c.identifier.as_str()))
            }
        }
    }
}

/// The members of a NIP-51 list: its `p` tags.
pub fn list_members(e: &Event) -> Vec<PublicKey> {
    e.tags
        .iter()
        .filter_map(|t| {
            let s = t.as_slice();
            (s.len() >= 2 && s[0] == "p")
                .then(|| PublicKey::from_hex(s[1].trim()).ok())
                .flatten()
        })
        .collect()
}

/// An advertisement younger than this makes a worker online.
pub const ONLINE_WINDOW_SECS: u64 = 5 * 60;
/// A job pending longer than this is stale.
pub const STALE_AFTER_SECS: u64 = 72 * 3600;

impl WorkerAd {
    /// Read an advertisement; `None` if the kind is wrong. Bad content JSON
    /// leaves the content fields empty rather than dropping the worker.
    pub fn from_event(event: &Event) -> Option<Self> {
        if event.kind != Kind::Custom(KIND_WORKER_AD) {
            return None;
        }
        let content: serde_json::Value =
            serde_json::from_str(&event.content).unwrap_or(serde_json::Value::Null);
        let text = |k: &str| {
            content
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let num = |k: &str| content.get(k).and_then(|v| v.as_u64());
        let mut ad = WorkerAd {
            pubkey: event.pubkey,
            name: text("name"),
            description: text("description"),
            max_concurrent_jobs: num("max_concurrent_jobs"),
            current_queue_depth: num("current_queue_depth"),
            architecture: None,
            software: Vec::new(),
            prices: Vec::new(),
            min_duration: None,
            max_duration: None,
            access: Box::new(Access {
                is_whitelisted: content.get("is_whitelisted").and_then(json_bool),
                whitelist_event: content
                    .get("whitelist_event")
                    .and_then(|v| v.as_str())
                    .map(str::to_string),
                freelist_event: content
                    .get("freelist_event")
                    .and_then(|v| v.as_str())
                    .map(str::to_string),
                freelist_timeout: content.get("freelist_timeout").and_then(json_u64),
            }),
            at: event.created_at,
        };
        for tag in event.tags.iter() {
            let s = tag.as_slice();
            let v = |i: usize| s.get(i).map(String::as_str).unwrap_or("");
            match s[0].as_str() {
                "A" => ad.architecture = Some(v(1).to_string()),
                "S" => ad.software.push((v(1).to_string(), v(2).to_string())),
                // Budabit: [price, period, rate, unit, mint]; swarmstr:
                // [price, mint, rate, unit]. A URL in [1] tells them apart.
                "price" => {
                    if let Ok(rate) = v(2).trim().parse::<f64>() {
                        let (period, mint) = if is_url(v(1)) {
                            (String::new(), v(1).to_string())
                        } else {
                            (v(1).to_string(), v(4).to_string())
                        };
                        ad.prices.push(Price {
                            period,
                            rate,
                            unit: v(3).to_string(),
                            mint,
                        });
                    }
                }
                "is_whitelisted" => ad.access.is_whitelisted = json_bool(&serde_json::json!(v(1))),
                "whitelist_event" if !v(1).is_empty() => {
                    ad.access.whitelist_event = Some(v(1).to_string())
                }
                "freelist_event" if !v(1).is_empty() => {
                    ad.access.freelist_event = Some(v(1).to_string())
                }
                "freelist_timeout" => ad.access.freelist_timeout = v(1).trim().parse().ok(),
                "min_duration" => ad.min_duration = v(1).trim().parse().ok(),
                "max_duration" => ad.max_duration = v(1).trim().parse().ok(),
                _ => {}
            }
        }
        Some(ad)
    }

    /// Online when the advertisement is under 5 minutes old at `now`.
    pub fn is_online(&self, now: Timestamp) -> bool {
        now.as_secs().saturating_sub(self.at.as_secs()) < ONLINE_WINDOW_SECS
    }

    /// The version of a piece of software it advertises (e.g. `act`).
    pub fn software_version(&self, name: &str) -> Option<&str> {
        self.software
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether it accepts payment from `mint` (trailing slashes ignored).
    pub fn accepts_mint(&self, mint: &str) -> bool {
        let norm = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
        self.prices.iter().any(|p| norm(&p.mint) == norm(mint))
    }
}

fn json_bool(v: &serde_json::Value) -> Option<bool> {
    match v {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" => Some(false),
            _ => None,
        },
        serde_json::Value::Number(n) => n.as_u64().map(|n| n != 0),
        _ => None,
    }
}

fn json_u64(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A reference to a job: its id and any relay hints that came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef {
    /// The job id.
    pub id: EventId,
    /// Relay hints from an `nevent`.
    pub relays: Vec<RelayUrl>,
}

impl JobRef {
    /// Parse hex, `note1`, `nevent1` or a `nostr:` URI of either.
    pub fn parse(s: &str) -> Result<JobRef, String> {
        let t = s.trim();
        let t = t.strip_prefix("nostr:").unwrap_or(t);
        if t.starts_with("nevent1") {
            let n =
                Nip19Event::from_bech32(t).map_err(|_| format!("`{s}` is not a valid nevent"))?;
            return Ok(JobRef {
                id: n.event_id,
                relays: n.relays,
            });
        }
        EventId::parse(t)
            .map(|id| JobRef { id, relays: vec![] })
            .map_err(|_| format!("`{s}` is not a job id (hex, note1 or nevent1)"))
    }
}

/// Parse `KEY=VALUE` as used by `--env` and `--secret`. The key must be a
/// plausible environment variable name ([`validate_env_key`]).
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got `{}`", crate::text::clip(s, 80)))?;
    if k.is_empty() {
        return Err(format!("empty key in `{}`", crate::text::clip(s, 80)));
    }
    validate_env_key(k)?;
    check_text("the value", v)?;
    Ok((k.to_string(), v.to_string()))
}

/// An environment variable name: letters, digits and `_`, not starting
/// with a digit. The one rule for `--env`, `--secret` and batch lines.
pub fn validate_env_key(k: &str) -> Result<(), String> {
    if k.is_empty() {
        return Err("empty variable name".into());
    }
    let valid = k
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if !valid {
        return Err(format!(
            "`{}` is not a valid variable name (letters, digits and _, not starting with a digit)",
            crate::text::clip(k, 80)
        ));
    }
    Ok(())
}

/// Refuse a NUL byte in `s`: no command line, argument or environment
/// value can hold one (the worker's `execve` would cut or refuse it), and
/// a flag cannot carry one.
pub fn check_text(what: &str, s: &str) -> Result<(), String> {
    if s.contains('\0') {
        return Err(format!("{what} holds a NUL byte"));
    }
    Ok(())
}

/// The checks every job passes whatever it came from (flags, a batch
/// line, a past job): a non-empty command, no NUL byte anywhere, valid
/// variable names.
pub fn validate_job_fields(
    cmd: &str,
    args: &[String],
    env: &[(String, String)],
    secrets: &[(String, String)],
) -> Result<(), String> {
    if cmd.trim().is_empty() {
        return Err("the command must not be empty".into());
    }
    check_text("the command", cmd)?;
    for (i, a) in args.iter().enumerate() {
        check_text(&format!("argument {}", i + 1), a)?;
    }
    for (what, list) in [("env", env), ("secret", secrets)] {
        for (k, v) in list {
            validate_env_key(k).map_err(|e| format!("{what}: {e}"))?;
            check_text(&format!("{what} {k}"), v)?;
        }
    }
    Ok(())
}

/// Loom job cancel (swarmstr's workers listen for it): `e` = job, `p` = worker.
pub const KIND_JOB_CANCEL: u16 = 5102;

/// NIP-65 relay list.
pub const KIND_RELAY_LIST: u16 = 10002;

/// NIP-51 follow set (used as a worker's freelist).
pub const KIND_FOLLOW_SET: u16 = 30000;

/// A kind 5102 cancel of `job` addressed to `worker`, `reason` as content.
pub fn cancel_request(job: &EventId, worker: &PublicKey, reason: &str) -> EventBuilder {
    EventBuilder::new(Kind::Custom(KIND_JOB_CANCEL), reason)
        .tags([Tag::event(*job), Tag::public_key(*worker)])
}

/// A NIP-65 relay list (kind 10002) naming `relays` for reading and
/// writing (an `r` tag without a marker means both).
pub fn relay_list(relays: &[RelayUrl]) -> EventBuilder {
    EventBuilder::new(Kind::Custom(KIND_RELAY_LIST), "").tags(
        relays
            .iter()
            .map(|r| Tag::custom(TagKind::Custom("r".into()), [r.to_string()])),
    )
}

/// A NIP-51 follow set (kind 30000, `d` = `d`) with one `p` tag per member.
pub fn freelist(d: &str, members: &[PublicKey]) -> EventBuilder {
    let mut tags = vec![Tag::identifier(d)];
    tags.extend(members.iter().map(|m| Tag::public_key(*m)));
    EventBuilder::new(Kind::Custom(KIND_FOLLOW_SET), "").tags(tags)
}

/// The `kind:pubkey:d` address of `author`'s follow set `d`.
pub fn freelist_address(author: &PublicKey, d: &str) -> String {
    format!("{KIND_FOLLOW_SET}:{}:{d}", author.to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pk(n: u8) -> PublicKey {
        Keys::new(SecretKey::from_slice(&[n; 32]).expect("valid")).public_key()
    }

    #[test]
    fn tags_follow_the_spec_order() {
        let req = JobRequest {
            worker: pk(1),
            p: pk(1),
            cmd: "act".into(),
            args: vec!["--help".into()],
            payment: Some("cashuAtoken".into()),
            parent: None,
            env: vec![("A".into(), "1".into())],
            secrets: vec![],
            content: String::new(),
        };
        let tags: Vec<Vec<String>> = req.tags().into_iter().map(|t| t.to_vec()).collect();
        assert_eq!(tags[0], vec!["p".to_string(), pk(1).to_hex()]);
        assert_eq!(tags[1], vec!["worker".to_string(), pk(1).to_hex()]);
        assert_eq!(tags[2], vec!["cmd", "act"]);
        assert_eq!(tags[3], vec!["args", "--help"]);
        assert_eq!(tags[4], vec!["payment", "cashuAtoken"]);
        assert_eq!(tags[5], vec!["env", "A", "1"]);
    }

    #[test]
    fn no_args_is_a_bare_args_tag_and_unpaid_has_no_payment() {
        let req = JobRequest {
            worker: pk(1),
            p: pk(2),
            cmd: "bash".into(),
            args: vec![],
            payment: None,
            parent: None,
            env: vec![],
            secrets: vec![],
            content: String::new(),
        };
        let tags: Vec<Vec<String>> = req.tags().into_iter().map(|t| t.to_vec()).collect();
        assert_eq!(tags.len(), 4);
        assert_eq!(tags[3], vec!["args"]);
        assert!(tags.iter().all(|t| t[0] != "payment"));
    }

    #[test]
    fn round_trips_through_an_event() {
        let keys = Keys::generate();
        let req = JobRequest {
            worker: pk(3),
            p: pk(3),
            cmd: "act".into(),
            args: vec!["-j".into(), "build".into()],
            payment: Some("cashuBxyz".into()),
            parent: Some(EventId::all_zeros()),
            env: vec![("K".into(), "V".into())],
            secrets: vec![("S".into(), "cipher".into())],
            content: String::new(),
        };
        let event = req.to_builder().sign_with_keys(&keys).expect("sign");
        assert_eq!(JobRequest::from_event(&event), Some(req));
    }

    #[test]
    fn p_tag_may_name_the_signer() {
        let keys = Keys::generate();
        let req = JobRequest {
            worker: pk(4),
            p: keys.public_key(),
            cmd: "act".into(),
            args: vec![],
            payment: None,
            parent: None,
            env: vec![],
            secrets: vec![],
            content: String::new(),
        };
        let event = req.to_builder().sign_with_keys(&keys).expect("sign");
        let first = event.tags.first().expect("tags").as_slice().to_vec();
        assert_eq!(first, vec!["p".to_string(), keys.public_key().to_hex()]);
    }

    #[test]
    fn states_normalise_and_never_fail() {
        assert_eq!(JobState::parse("in_progress"), JobState::Running);
        assert_eq!(JobState::parse("FAILURE"), JobState::Failed);
        assert_eq!(JobState::parse("canceled"), JobState::Cancelled);
        assert_eq!(JobState::parse("exploded"), JobState::Unknown);
        assert_eq!(JobState::parse(""), JobState::Unknown);
        assert!(JobState::Success.is_terminal() && !JobState::Running.is_terminal());
    }

    #[test]
    fn result_success_from_flag_or_exit_code() {
        let keys = Keys::generate();
        let job = EventId::all_zeros();
        let mk = |tags: Vec<Tag>| {
            EventBuilder::new(Kind::Custom(KIND_JOB_RESULT), "")
                .tags(tags)
                .sign_with_keys(&keys)
                .expect("sign")
        };
        let e = mk(vec![Tag::event(job), custom("exit_code", vec!["0".into()])]);
        assert!(JobResult::from_event(&e).expect("result").success);
        let e = mk(vec![
            Tag::event(job),
            custom("success", vec!["false".into()]),
            custom("exit_code", vec!["3".into()]),
            custom("stdout", vec!["http://x/abc".into()]),
        ]);
        let r = JobResult::from_event(&e).expect("result");
        assert!(!r.success);
        assert_eq!(r.exit_code, Some(3));
        assert_eq!(r.stdout.as_deref(), Some("http://x/abc"));
        assert!(JobResult::from_event(&mk(vec![])).is_none());
    }

    #[test]
    fn advertisement_reads_price_positions() {
        let keys = Keys::generate();
        let e = EventBuilder::new(
            Kind::Custom(KIND_WORKER_AD),
            r#"{"name":"w1","max_concurrent_jobs":4,"current_queue_depth":1}"#,
        )
        .tags(vec![
            custom("A", vec!["x86_64".into()]),
            custom("S", vec!["act".into(), "0.2.60".into()]),
            custom(
                "price",
                vec![
                    "second".into(),
                    "2".into(),
                    "sat".into(),
                    "http://mint/".into(),
                ],
            ),
        ])
        .sign_with_keys(&keys)
        .expect("sign");
        let ad = WorkerAd::from_event(&e).expect("ad");
        assert_eq!(ad.name, "w1");
        assert_eq!(ad.software_version("act"), Some("0.2.60"));
        assert_eq!(ad.prices[0].rate, 2.0);
        assert!(ad.accepts_mint("http://MINT"));
        assert!(ad.is_online(e.created_at));
        assert!(!ad.is_online(Timestamp::from(e.created_at.as_secs() + 301)));
    }

    #[test]
    fn todays_status_words() {
        let cases = [
            ("completed", JobState::Success),
            ("timeout", JobState::Failed),
            ("failure", JobState::Failed),
            ("in_progress", JobState::Running),
            ("pending", JobState::Pending),
            ("skipped", JobState::Skipped),
            ("error", JobState::Error),
            ("queued", JobState::Queued),
        ];
        for (word, state) in cases {
            assert_eq!(JobState::parse(word), state, "{word}");
        }
        assert!(JobState::Skipped.is_terminal());
        assert!(!JobState::Pending.is_terminal());
    }

    #[test]
    fn status_reads_queue_position_and_timeout_reason() {
        let keys = Keys::generate();
        let job = EventId::all_zeros().to_hex();
        let mk = |word: &str, extra: Vec<Tag>| {
            let mut tags = vec![
                custom("d", vec![job.clone()]),
                custom("e", vec![job.clone()]),
                custom("status", vec![word.into()]),
            ];
            tags.extend(extra);
            let e = EventBuilder::new(Kind::Custom(KIND_JOB_STATUS), "")
                .tags(tags)
                .sign_with_keys(&keys)
                .expect("sign");
            StatusUpdate::from_event(&e).expect("status")
        };
        let s = mk("queued", vec![custom("queue_position", vec!["4".into()])]);
        assert_eq!(
            (s.state, s.queue_position, s.reason),
            (JobState::Queued, Some(4), None)
        );
        let s = mk("timeout", vec![]);
        assert_eq!(s.state, JobState::Failed);
        assert_eq!(s.reason.as_deref(), Some("timed out"));
        let s = mk("error", vec![custom("error", vec!["disk full".into()])]);
        assert_eq!(s.reason.as_deref(), Some("disk full"));
        let s = mk("queued", vec![custom("queue_position", vec!["x".into()])]);
        assert_eq!(s.queue_position, None);
    }

    #[test]
    fn result_reads_error_and_inline_output() {
        let keys = Keys::generate();
        let e = EventBuilder::new(Kind::Custom(KIND_JOB_RESULT), "")
            .tags(vec![
                Tag::event(EventId::all_zeros()),
                custom("success", vec!["false".into()]),
                custom(
                    "error",
                    vec!["Pubkey not whitelisted for this worker".into()],
                ),
                custom("stdout", vec!["plain text".into()]),
                custom("duration", vec!["2.5".into()]),
            ])
            .sign_with_keys(&keys)
            .expect("sign");
        let r = JobResult::from_event(&e).expect("result");
        assert!(!r.success);
        assert_eq!(
            r.error.as_deref(),
            Some("Pubkey not whitelisted for this worker")
        );
        assert_eq!(r.duration, Some(2.5));
        assert_eq!(parse_seconds(" 7s "), Some(7.0));
        assert_eq!(parse_seconds("NaN"), None);
        assert_eq!(parse_seconds("-1"), None);
        assert!(!is_url(r.stdout.as_deref().expect("stdout")));
        assert!(is_url("https://blossom.example/abc"));
        assert!(!is_url("http://x y"));
    }

    #[test]
    fn advertisement_reads_both_price_layouts_and_access() {
        let keys = Keys::generate();
        let e = EventBuilder::new(
            Kind::Custom(KIND_WORKER_AD),
            r#"{"is_whitelisted":"true","freelist_event":"30000:ab:free","freelist_timeout":60}"#,
        )
        .tags(vec![
            custom(
                "price",
                vec!["https://m.example".into(), "3".into(), "sat".into()],
            ),
            custom(
                "price",
                vec![
                    "second".into(),
                    "1".into(),
                    "sat".into(),
                    "http://n/".into(),
                ],
            ),
            custom("whitelist_event", vec!["naddr1xyz".into()]),
            custom("freelist_timeout", vec!["120".into()]),
        ])
        .sign_with_keys(&keys)
        .expect("sign");
        let ad = WorkerAd::from_event(&e).expect("ad");
        assert_eq!(ad.name, "");
        assert_eq!(
            (
                ad.prices[0].mint.as_str(),
                ad.prices[0].rate,
                ad.prices[0].unit.as_str()
            ),
            ("https://m.example", 3.0, "sat")
        );
        assert_eq!(ad.prices[0].period, "");
        assert_eq!(
            (ad.prices[1].period.as_str(), ad.prices[1].mint.as_str()),
            ("second", "http://n/")
        );
        assert!(ad.accepts_mint("https://m.example/"));
        assert_eq!(ad.access.is_whitelisted, Some(true));
        assert_eq!(ad.access.freelist_event.as_deref(), Some("30000:ab:free"));
        assert_eq!(ad.access.whitelist_event.as_deref(), Some("naddr1xyz"));
        // Tags win over content.
        assert_eq!(ad.access.freelist_timeout, Some(120));
    }

    #[test]
    fn list_pointers_in_every_form() {
        let keys = Keys::generate();
        let list = EventBuilder::new(Kind::Custom(30000), "")
            .tags(vec![
                Tag::identifier("free"),
                Tag::public_key(pk(7)),
                custom("p", vec!["not a key".into()]),
            ])
            .sign_with_keys(&keys)
            .expect("sign");
        assert_eq!(list_members(&list), vec![pk(7)]);
        let kpd = format!("30000:{}:free", keys.public_key().to_hex());
        let coord = Coordinate::new(Kind::Custom(30000), keys.public_key()).identifier("free");
        let naddr = Nip19Coordinate::new(coord, Vec::<RelayUrl>::new())
            .to_bech32()
            .expect("naddr");
        let nevent = Nip19Event::new(list.id).to_bech32().expect("nevent");
        for p in [
            kpd.as_str(),
            naddr.as_str(),
            nevent.as_str(),
            &format!("nostr:{naddr}"),
        ] {
            let l = ListPointer::parse(p).unwrap_or_else(|| panic!("{p} parses"));
            assert!(l.matches(&list), "{p}");
            assert!(
                l.filter().match_event(&list, MatchEventOptions::new()),
                "{p}"
            );
        }
        let other = format!("30000:{}:other", keys.public_key().to_hex());
        assert!(!ListPointer::parse(&other).expect("parses").matches(&list));
        assert!(ListPointer::parse("garbage").is_none());
    }

    #[test]
    fn job_refs() {
        let id = EventId::all_zeros();
        assert_eq!(JobRef::parse(&id.to_hex()).expect("hex").id, id);
        let note = id.to_bech32().expect("note");
        assert_eq!(JobRef::parse(&note).expect("note").id, id);
        let url = RelayUrl::parse("ws://127.0.0.1:7000").expect("url");
        let nevent = Nip19Event::new(id)
            .relays([url.clone()])
            .to_bech32()
            .expect("nevent");
        let r = JobRef::parse(&format!("nostr:{nevent}")).expect("nevent");
        assert_eq!((r.id, r.relays), (id, vec![url]));
        assert!(JobRef::parse("nope").is_err());
    }

    #[test]
    fn key_value_parsing() {
        assert_eq!(parse_key_value("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert_eq!(parse_key_value("A="), Ok(("A".into(), "".into())));
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=x").is_err());
        assert!(parse_key_value("1A=x").is_err());
        assert!(parse_key_value("A-B=x").is_err());
        assert!(parse_key_value("A=x\0y").is_err());
    }

    #[test]
    fn job_fields_refuse_nul_and_bad_keys() {
        let ok = |c: &str, a: &[&str], e: &[(&str, &str)]| {
            let args: Vec<String> = a.iter().map(|s| s.to_string()).collect();
            let env: Vec<(String, String)> = e
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            validate_job_fields(c, &args, &env, &[]).is_ok()
        };
        assert!(ok("act", &["-j", "build"], &[("A", "x=y")]));
        assert!(!ok("", &[], &[]));
        assert!(!ok("a\0ct", &[], &[]));
        assert!(!ok("act", &["x\0"], &[]));
        assert!(!ok("act", &[], &[("A=B", "x")]));
        assert!(!ok("act", &[], &[("A", "x\0")]));
    }
}
