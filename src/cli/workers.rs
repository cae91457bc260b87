//! `jobctl workers`: the workers that advertise themselves (kind 10100);
//! the library decides online, free for your key and the filters, this
//! file renders the table or JSON.

use clap::Args;
use comfy_table::Cell;
use serde_json::json;

use jobctl::error::{exit, Error, Result};
use jobctl::follow;
use jobctl::keys::npub;
use jobctl::roster::{self, ForYou, Wanted, WorkerRow};

use super::read::{read_relays, reader, ReadArgs};
use super::render::{self, age, clip, short_npub};
use super::render_jobs::ad_name;
use super::{runtime, Ctx};

#[derive(Debug, Args)]
pub struct WorkersArgs {
    /// Only workers whose advertisement is under 5 minutes old.
    #[arg(long)]
    pub online: bool,

    /// Only workers that accept this mint.
    #[arg(long, value_name = "URL", value_parser = jobctl::payment::parse_mint_url)]
    pub mint: Option<String>,

    /// Print a JSON array on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub read: ReadArgs,
}

pub fn run(ctx: &Ctx, a: WorkersArgs) -> Result<i32> {
    let cfg = ctx.config()?;
    let deadline = ctx.start_deadline(a.read.timeout.as_deref(), cfg.query_timeout)?;
    let urls = read_relays(&cfg, &a.read.relays, &[])?;
    let now = ctx.now();
    let me = ctx.optional_key(&cfg)?.map(|k| k.keys.public_key());
    let fetched = runtime()?.block_on(async {
        let client = reader(ctx, &cfg, &urls, false).await?;
        Ok::<_, Error>(roster::fetch(&client, &urls, me, &deadline).await)
    })?;
    if fetched.reach.none_answered() {
        return Err(follow::reach_error(
            &fetched.reach,
            deadline.total(),
            "looking up worker advertisements",
        ));
    }
    if !fetched.reach.complete() {
        ctx.warn(&fetched.reach.describe());
    }
    let want = Wanted {
        online: a.online,
        mint: a.mint.as_deref(),
        me,
    };
    let rows = roster::rows(fetched.ads, &want, &fetched.lists, now);
    if a.json {
        ctx.print(&rows_json(&rows).to_string())?;
        return Ok(exit::OK);
    }
    ctx.say(workers_table(&rows, render::stderr_color(), now.as_secs()));
    for w in &rows {
        ctx.print(&npub(&w.ad.pubkey))?;
    }
    Ok(exit::OK)
}

/// The workers as a JSON array: each advertisement plus the decisions.
fn rows_json(rows: &[WorkerRow]) -> serde_json::Value {
    let v = rows
        .iter()
        .map(|w| {
            let mut j = serde_json::to_value(&w.ad).unwrap_or_default();
            j["npub"] = json!(npub(&w.ad.pubkey));
            j["online"] = json!(w.online);
            j["unnamed"] = json!(w.unnamed);
            j["free_for_me"] = json!(w.free_reason.is_some());
            j["free_reason"] = json!(w.free_reason);
            j
        })
        .collect();
    serde_json::Value::Array(v)
}

/// The first advertised price: `rate unit[/period]`, or "free".
fn price(w: &WorkerRow) -> String {
    let Some(p) = w.ad.prices.first() else {
        return "free".to_string();
    };
    if p.period.is_empty() {
        format!("{} {}", p.rate, clip(&p.unit, 12))
    } else {
        format!("{} {}/{}", p.rate, clip(&p.unit, 12), clip(&p.period, 12))
    }
}

fn opt_count(n: Option<u64>) -> String {
    n.map(|d| d.to_string()).unwrap_or_else(|| "?".into())
}

fn worker_row(w: &WorkerRow, color: bool, now: u64) -> Vec<Cell> {
    let ad = &w.ad;
    let for_you = match w.for_you() {
        ForYou::Free => "free",
        ForYou::Whitelist => "whitelist",
        ForYou::Paid => "-",
    };
    let mints: Vec<String> = ad.prices.iter().map(|p| clip(&p.mint, 60)).collect();
    let mut online = Cell::new(if w.online { "yes" } else { "no" });
    if color {
        online = online.fg(if w.online {
            comfy_table::Color::Green
        } else {
            comfy_table::Color::DarkGrey
        });
    }
    vec![
        Cell::new(ad_name(ad, 40)),
        Cell::new(short_npub(&ad.pubkey.to_hex())),
        Cell::new(clip(ad.architecture.as_deref().unwrap_or("-"), 20)),
        Cell::new(clip(ad.software_version("act").unwrap_or("-"), 20)),
        Cell::new(price(w)),
        Cell::new(if mints.is_empty() {
            "-".to_string()
        } else {
            mints.join(" ")
        }),
        Cell::new(format!(
            "{}/{}",
            opt_count(ad.current_queue_depth),
            opt_count(ad.max_concurrent_jobs)
        )),
        online,
        Cell::new(format!("{} ago", age(now, ad.at.as_secs()))),
        Cell::new(for_you),
    ]
}

/// The workers table for stderr.
fn workers_table(rows: &[WorkerRow], color: bool, now: u64) -> String {
    let headers = [
        "name",
        "npub",
        "arch",
        "act",
        "price",
        "mints",
        "queue",
        "online",
        "last seen",
        "for you",
    ];
    let mut t = render::table(&headers, color);
    for w in rows {
        t.add_row(worker_row(w, color, now));
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobctl::protocol::{WorkerAd, KIND_WORKER_AD};
    use nostr_sdk::prelude::*;

    #[test]
    fn workers_table_by_the_fixed_clock() {
        let ev = EventBuilder::new(Kind::Custom(KIND_WORKER_AD), r#"{"max_concurrent_jobs":2}"#)
            .custom_created_at(Timestamp::from(1_000))
            .sign_with_keys(&Keys::generate())
            .expect("sign");
        let ad = WorkerAd::from_event(&ev).expect("ad");
        let rows = roster::rows(
            vec![ad],
            &Wanted::default(),
            &Default::default(),
            Timestamp::from(1_130),
        );
        let s = workers_table(&rows, false, 1_130);
        assert!(!s.contains('\x1b'), "{s}");
        assert!(s.contains("(unnamed)") && s.contains("?/2"), "{s}");
        assert!(
            s.contains("yes") && s.contains("2m ago") && s.contains("free"),
            "{s}"
        );
        let j = rows_json(&rows);
        assert_eq!(j[0]["unnamed"], true);
        assert_eq!(j[0]["free_for_me"], false);
    }
}
