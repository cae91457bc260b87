//! Recovery: taking the wallet for one operation (lock file, then
//! recovery of dead operations), the entry points that reconcile the
//! wallet with its mints (the steps are in `reconcile.rs`), and what a
//! reconcile reports ([`Reconciled`], [`Fix`]).

use super::*;

/// What [`LocalWallet::reconcile`] found and fixed at one mint.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Reconciled {
    /// Mint URL.
    pub mint: String,
    /// Interrupted operations completed (cdk saga recovery).
    pub recovered: usize,
    /// Interrupted operations rolled back.
    pub rolled_back: usize,
    /// Swaps cut off before the mint signed anything, dropped.
    pub stale_swaps_dropped: usize,
    /// Interrupted operations left for a later try (mint unreachable...).
    pub left_pending: usize,
    /// Value of proofs the wallet listed as unspent/reserved that the mint
    /// says are spent (no longer counted).
    pub marked_spent: u64,
    /// Value of reserved proofs of dead operations, unspent at the mint:
    /// spendable again.
    pub released: u64,
    /// Tokens made but never journaled or handed out, taken back.
    pub reclaimed_sends: usize,
    /// Their value back in the wallet.
    pub reclaimed_amount: u64,
    /// Value in proofs locked to someone else that no token in flight holds.
    pub locked_orphans: u64,
    /// Value of proofs the wallet would have spent that the mint holds
    /// pending (a swap cut off mid-way): held out of spending until the
    /// mint settles them; a later check releases or drops them.
    pub held_at_mint: u64,
    /// Problems met (each one line).
    pub problems: Vec<String>,
}

/// One thing a reconcile fixed or found (nonzero counts only), in the
/// order a summary names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    /// Interrupted operations completed.
    Recovered(usize),
    /// Interrupted operations rolled back.
    RolledBack(usize),
    /// Swaps the mint never executed, dropped.
    StaleSwapsDropped(usize),
    /// Sat listed as spendable that the mint says are spent.
    MarkedSpent(u64),
    /// Sat reserved by dead operations, spendable again.
    Released(u64),
    /// Sat the mint holds pending, kept out of spending.
    HeldAtMint(u64),
    /// Tokens never journaled or handed out, taken back, and their sat.
    ReclaimedSends(usize, u64),
    /// Operations left for a later check.
    LeftPending(usize),
    /// Sat in proofs locked to someone else.
    LockedOrphans(u64),
}

impl Reconciled {
    /// What was fixed or found, nonzero counts only.
    pub fn fixes(&self) -> Vec<Fix> {
        let all = [
            (self.recovered > 0, Fix::Recovered(self.recovered)),
            (self.rolled_back > 0, Fix::RolledBack(self.rolled_back)),
            (
                self.stale_swaps_dropped > 0,
                Fix::StaleSwapsDropped(self.stale_swaps_dropped),
            ),
            (self.marked_spent > 0, Fix::MarkedSpent(self.marked_spent)),
            (self.released > 0, Fix::Released(self.released)),
            (self.held_at_mint > 0, Fix::HeldAtMint(self.held_at_mint)),
            (
                self.reclaimed_sends > 0,
                Fix::ReclaimedSends(self.reclaimed_sends, self.reclaimed_amount),
            ),
            (self.left_pending > 0, Fix::LeftPending(self.left_pending)),
            (
                self.locked_orphans > 0,
                Fix::LockedOrphans(self.locked_orphans),
            ),
        ];
        all.into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| f)
            .collect()
    }

    /// Whether anything was changed.
    pub fn changed(&self) -> bool {
        self.recovered + self.rolled_back + self.stale_swaps_dropped + self.reclaimed_sends > 0
            || self.marked_spent > 0
            || self.released > 0
            || self.held_at_mint > 0
    }
}

impl LocalWallet {
    /// Take the wallet for one money-moving operation at `mint`: the lock
    /// file (waiting for other processes), then, if a dead operation left
    /// traces, recover it first (bounded by [`RECOVERY_TIMEOUT`]).
    pub(super) async fn guard(
        &self,
        mint: &str,
        journal: Option<&mut Journal>,
    ) -> Result<OpGuard<'_>> {
        crate::files::create_private_dir(&self.dir)?;
        let file = FileLock::acquire_async(&lock_path(&self.dir), LOCK_WAIT).await?;
        {
            let _alone = self.ops.write().await;
            let mut journal = journal;
            let unfinished = match journal.as_deref_mut() {
                Some(j) => unfinished_sends(j, mint)?,
                None => false,
            };
            match self.needs_recovery(mint, unfinished).await {
                Ok(false) => {}
                Ok(true) | Err(_) => {
                    match self.reconcile_locked(mint, journal, RECOVERY_TIMEOUT).await {
                        Ok(r) => {
                            if r.changed() {
                                tracing::info!(?r, "recovered interrupted wallet operations");
                            }
                            for p in &r.problems {
                                tracing::warn!("wallet recovery at {mint}: {p}");
                            }
                        }
                        Err(e) => tracing::warn!(
                            "wallet recovery at {mint}: {e}; `jobctl wallet check` retries"
                        ),
                    }
                }
            }
        }
        Ok(OpGuard {
            _file: file,
            _ops: self.ops.read().await,
        })
    }

    /// Whether a dead operation left traces at `mint` (local look-ups only).
    pub(super) async fn needs_recovery(&self, mint: &str, unfinished_sends: bool) -> Result<bool> {
        if unfinished_sends {
            return Ok(true);
        }
        let w = self.wallet(mint).await?;
        let sagas = w.localstore.get_incomplete_sagas().await.map_err(werr)?;
        if sagas.iter().any(|s| {
            s.mint_url == w.mint_url
                && !matches!(s.state, WalletSagaState::Send(SendSagaState::TokenCreated))
        }) {
            return Ok(true);
        }
        let held = w
            .localstore
            .get_proofs(
                Some(w.mint_url.clone()),
                Some(w.unit.clone()),
                Some(vec![State::Reserved, State::Pending]),
                None,
            )
            .await
            .map_err(werr)?;
        Ok(!held.is_empty())
    }

    /// Bring the wallet at `mint` in line with the mint, under the lock:
    /// recover interrupted operations (cdk sagas; swaps cut off before the
    /// mint signed anything are dropped after a NUT-09 look-up), check every
    /// proof not known spent (NUT-07: spent ones are marked spent, reserved
    /// ones of dead operations released), and take back tokens made for a
    /// job or `wallet send` that `journal` shows were never journaled or
    /// handed out. Bounded by `timeout`.
    pub async fn reconcile(
        &self,
        mint: &str,
        journal: Option<&mut Journal>,
        timeout: Duration,
    ) -> Result<Reconciled> {
        let _file = FileLock::acquire_async(&lock_path(&self.dir), LOCK_WAIT).await?;
        let _alone = self.ops.write().await;
        self.reconcile_locked(mint, journal, timeout).await
    }

    pub(super) async fn reconcile_locked(
        &self,
        mint: &str,
        journal: Option<&mut Journal>,
        timeout: Duration,
    ) -> Result<Reconciled> {
        let mut out = Reconciled {
            mint: mint.to_string(),
            ..Default::default()
        };
        let work = self.reconcile_inner(mint, journal, &mut out);
        match tokio::time::timeout(timeout, work).await {
            Ok(Ok(())) => Ok(out),
            Ok(Err(e)) => {
                out.problems.push(e.to_string());
                Ok(out)
            }
            Err(_) => {
                out.problems.push(format!(
                    "mint {mint} did not answer within {}s; the rest is left for later",
                    timeout.as_secs()
                ));
                Ok(out)
            }
        }
    }

    /// Recover interrupted operations at every mint that shows traces of
    /// one (local look-ups first; the mint is asked only then), if the
    /// wallet's lock is free within a moment. For readers such as
    /// `wallet balance`, so they do not show proofs a dead operation spent.
    pub async fn recover_if_needed(
        &self,
        mut journal: Option<&mut Journal>,
        timeout: Duration,
    ) -> Result<Vec<Reconciled>> {
        let Ok(_file) =
            FileLock::acquire_async(&lock_path(&self.dir), Duration::from_millis(500)).await
        else {
            return Ok(Vec::new());
        };
        let _alone = self.ops.write().await;
        let mut out = Vec::new();
        for m in self.mints().await {
            let unfinished = match journal.as_deref_mut() {
                Some(j) => unfinished_sends(j, &m)?,
                None => false,
            };
            if self.needs_recovery(&m, unfinished).await.unwrap_or(true) {
                out.push(
                    self.reconcile_locked(&m, journal.as_deref_mut(), timeout)
                        .await?,
                );
            }
        }
        Ok(out)
    }

    /// [`LocalWallet::reconcile`] for every mint the wallet knows.
    pub async fn reconcile_all(
        &self,
        mut journal: Option<&mut Journal>,
        timeout: Duration,
    ) -> Result<Vec<Reconciled>> {
        let mut out = Vec::new();
        for m in self.mints().await {
            out.push(self.reconcile(&m, journal.as_deref_mut(), timeout).await?);
        }
        Ok(out)
    }
}
