//! Kind 10100, the worker advertisement (replaceable): name, capacity,
//! architecture, software, prices per mint, durations and access fields.
//! Built by the worker ([`AdSpec`]), read by clients ([`WorkerAd`]); whether
//! a worker counts as online is client policy ([`crate::policy`]).

use nostr_sdk::prelude::*;

use super::{custom, is_url, KIND_WORKER_AD};

/// What a worker advertises about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdSpec {
    /// Name (content JSON).
    pub name: String,
    /// Description (content JSON).
    pub description: String,
    /// Jobs run at once (content JSON).
    pub max_concurrent_jobs: u64,
    /// Jobs waiting now (content JSON).
    pub current_queue_depth: u64,
    /// `A` tag.
    pub architecture: String,
    /// `S` tags: (software, version).
    pub software: Vec<(String, String)>,
    /// `min_duration` seconds.
    pub min_duration: u64,
    /// `max_duration` seconds.
    pub max_duration: u64,
    /// `freelist_event` address and `freelist_timeout` seconds.
    pub freelist: Option<(String, u64)>,
    /// Sat per second; 0 is a free worker (no `price` tags).
    pub price_per_second: u64,
    /// One `price` tag per accepted mint (Budabit's layout).
    pub mints: Vec<String>,
}

impl AdSpec {
    /// The unsigned kind 10100 event. Tags: A, S..., min_duration,
    /// max_duration, freelist_event and freelist_timeout (when set), then
    /// one `[price, second, rate, sat, mint]` per mint (when paid).
    pub fn to_builder(&self) -> EventBuilder {
        let content = serde_json::json!({
            "name": self.name,
            "description": self.description,
            "max_concurrent_jobs": self.max_concurrent_jobs,
            "current_queue_depth": self.current_queue_depth,
        });
        let mut tags = vec![custom("A", vec![self.architecture.clone()])];
        for (sw, version) in &self.software {
            tags.push(custom("S", vec![sw.clone(), version.clone()]));
        }
        tags.push(custom("min_duration", vec![self.min_duration.to_string()]));
        tags.push(custom("max_duration", vec![self.max_duration.to_string()]));
        if let Some((address, timeout)) = &self.freelist {
            tags.push(custom("freelist_event", vec![address.clone()]));
            tags.push(custom("freelist_timeout", vec![timeout.to_string()]));
        }
        if self.price_per_second > 0 {
            for m in &self.mints {
                let rate = self.price_per_second.to_string();
                let price = vec!["second".into(), rate, "sat".into(), m.clone()];
                tags.push(custom("price", price));
            }
        }
        EventBuilder::new(Kind::Custom(KIND_WORKER_AD), content.to_string()).tags(tags)
    }
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
            ad.read_tag(tag.as_slice());
        }
        Some(ad)
    }

    /// Fill in what one tag says (tags win over the content JSON).
    fn read_tag(&mut self, s: &[String]) {
        let ad = self;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_util::sign;

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
    fn spec_round_trips() {
        let spec = AdSpec {
            name: "w".into(),
            description: "d".into(),
            max_concurrent_jobs: 2,
            current_queue_depth: 1,
            architecture: "x86_64".into(),
            software: vec![("jobctl".into(), "1.0".into())],
            min_duration: 10,
            max_duration: 3600,
            freelist: Some(("30000:ab:loom-freelist".into(), 600)),
            price_per_second: 2,
            mints: vec!["http://m1".into(), "http://m2/".into()],
        };
        let e = sign(spec.to_builder());
        let ad = WorkerAd::from_event(&e).expect("ad");
        assert_eq!((ad.name.as_str(), ad.description.as_str()), ("w", "d"));
        assert_eq!(
            (ad.max_concurrent_jobs, ad.current_queue_depth),
            (Some(2), Some(1))
        );
        assert_eq!(ad.architecture.as_deref(), Some("x86_64"));
        assert_eq!(ad.software_version("jobctl"), Some("1.0"));
        assert_eq!((ad.min_duration, ad.max_duration), (Some(10), Some(3600)));
        assert_eq!(
            ad.access.freelist_event.as_deref(),
            Some("30000:ab:loom-freelist")
        );
        assert_eq!(ad.access.freelist_timeout, Some(600));
        assert_eq!(ad.prices.len(), 2);
        assert_eq!(
            (ad.prices[0].period.as_str(), ad.prices[0].rate),
            ("second", 2.0)
        );
        assert!(ad.accepts_mint("http://m2"));
        assert_eq!(
            e.content,
            r#"{"current_queue_depth":1,"description":"d","max_concurrent_jobs":2,"name":"w"}"#
        );
        let free = AdSpec {
            price_per_second: 0,
            freelist: None,
            ..spec
        };
        let ad = WorkerAd::from_event(&sign(free.to_builder())).expect("ad");
        assert!(ad.prices.is_empty() && ad.access.freelist_event.is_none());
    }
}
