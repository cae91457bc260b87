//! Where each job of a batch goes: the relays, plus its worker's inbox
//! relays (NIP-65, [`crate::outbox`]), each worker looked up once.

use std::collections::{HashMap, HashSet};

use nostr_sdk::prelude::*;

use super::Planned;
use crate::deadline::Deadline;
use crate::journal::Journal;
use crate::outbox::{self, Route};
use crate::relays;

/// Where each job of a batch goes: the relays, plus its worker's inbox
/// relays from the worker's NIP-65 list (looked up once per worker).
#[derive(Debug, Clone, Default)]
pub struct Targets {
    base: Vec<RelayUrl>,
    routes: HashMap<PublicKey, Route>,
}

impl Targets {
    /// The relays alone (no routing).
    pub fn plain(base: &[RelayUrl]) -> Targets {
        Targets {
            base: base.to_vec(),
            routes: HashMap::new(),
        }
    }

    /// Route every worker of `jobs` (`on`: `--no-outbox`/`outbox = false`
    /// turn it off): from the journal's cache, else looked up on `base`
    /// within a third of the deadline, all workers at once.
    pub async fn route(
        on: bool,
        journal: &Journal,
        keys: &Keys,
        base: &[RelayUrl],
        jobs: &[Planned],
        deadline: Deadline,
    ) -> Targets {
        let mut t = Targets::plain(base);
        let workers: HashSet<PublicKey> = jobs.iter().map(|p| p.spec.worker).collect();
        if !on || workers.is_empty() {
            return t;
        }
        let client = relays::client(keys, base).await;
        let lookups = workers.into_iter().map(|w| {
            let client = &client;
            async move {
                (
                    w,
                    outbox::route(on, journal, client, base, w, deadline).await,
                )
            }
        });
        t.routes = futures::future::join_all(lookups)
            .await
            .into_iter()
            .collect();
        relays::shutdown(&client).await;
        t
    }

    /// Where `worker`'s jobs go.
    pub fn of(&self, worker: &PublicKey) -> Vec<RelayUrl> {
        match self.routes.get(worker) {
            Some(r) => outbox::targets(&self.base, r),
            None => self.base.clone(),
        }
    }

    /// `worker`'s inbox relays that are not among the relays.
    pub fn inbox(&self, worker: &PublicKey) -> Vec<String> {
        self.routes
            .get(worker)
            .map(|r| r.inbox.iter().map(|u| u.to_string()).collect())
            .unwrap_or_default()
    }

    /// Every relay any job goes to.
    pub fn all(&self) -> Vec<RelayUrl> {
        let mut all = self.base.clone();
        for u in self.routes.values().flat_map(|r| &r.inbox) {
            if !all.contains(u) {
                all.push(u.clone());
            }
        }
        all
    }

    /// How many inbox relays the routing added.
    pub fn added(&self) -> usize {
        self.all().len() - self.base.len()
    }

    /// Cache the lists that were looked up (best effort).
    pub fn remember(&self, journal: &Journal) {
        for (w, r) in &self.routes {
            outbox::remember(journal, w, r);
        }
    }
}
