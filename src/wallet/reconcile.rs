//! Reconciling the wallet with one mint after a crash or kill, in named
//! steps: (0) tokens of sends in flight, (1) cdk's saga recovery, (2)
//! swaps the mint never signed, (3) NUT-07 states of every proof not known
//! spent, (4) tokens made but never journaled nor handed out.

use super::*;
use crate::journal::SendRecord;
use crate::journal::SendState;
use cdk::wallet::types::{ProofInfo, WalletSaga};

impl LocalWallet {
    /// Steps 0 to 4 at `mint`; the caller holds the lock and bounds the time.
    pub(super) async fn reconcile_inner(
        &self,
        mint: &str,
        journal: Option<&mut Journal>,
        out: &mut Reconciled,
    ) -> Result<()> {
        let w = self.wallet(mint).await?;
        // 0. The tokens of sends in flight, before cdk's recovery runs: it
        // drops a send whose proofs all came from a swap (their proofs are
        // not tied to the operation), and with it the token.
        let saga_tokens = send_tokens(&w).await?;
        // 1. cdk's own saga recovery.
        recover_sagas(&w, out).await?;
        // 2. Swaps cut off before the mint signed anything: dropped.
        drop_stale_swaps(&w, out).await?;
        // 3. NUT-07: every proof not known spent.
        let checked = check_proofs(&w, out).await?;
        // 4. Tokens made but never journaled nor handed out: take them back.
        let Some(j) = journal else {
            return Ok(());
        };
        let traces = Traces {
            saga_tokens,
            checked,
            pending: w
                .get_pending_sends()
                .await
                .map_err(werr)?
                .into_iter()
                .map(|u| u.to_string())
                .collect(),
        };
        let norm = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
        for rec in j.sends()? {
            if norm(&rec.mint) != norm(mint) || !rec.state.is_unfinished() {
                continue;
            }
            take_back(&w, j, &rec, &traces, out).await?;
        }
        Ok(())
    }
}

/// The wallet's unfinished operations at `w`'s mint.
async fn my_sagas(w: &Wallet) -> Result<Vec<WalletSaga>> {
    Ok(w.localstore
        .get_incomplete_sagas()
        .await
        .map_err(werr)?
        .into_iter()
        .filter(|s| s.mint_url == w.mint_url)
        .collect())
}

/// Step 0: the token of every send in flight, by operation id.
async fn send_tokens(w: &Wallet) -> Result<HashMap<String, String>> {
    let mut saga_tokens = HashMap::new();
    for s in my_sagas(w).await? {
        if let OperationData::Send(d) = &s.data {
            if let Some(t) = &d.token {
                saga_tokens.insert(s.id.to_string(), t.clone());
            }
        }
    }
    Ok(saga_tokens)
}

/// Step 1: cdk's own saga recovery. It also checks every token still in
/// flight (sent, not yet redeemed): only interrupted operations are
/// counted.
async fn recover_sagas(w: &Wallet, out: &mut Reconciled) -> Result<()> {
    let interrupted = |sagas: &[WalletSaga]| {
        sagas
            .iter()
            .filter(|s| s.state != WalletSagaState::Send(SendSagaState::TokenCreated))
            .count()
    };
    let before = interrupted(&my_sagas(w).await?);
    match w.recover_incomplete_sagas().await {
        Ok(r) => {
            let after = interrupted(&my_sagas(w).await?);
            out.rolled_back += r.compensated;
            out.recovered += before.saturating_sub(after).saturating_sub(r.compensated);
            out.left_pending += after;
        }
        Err(e) => out.problems.push(format!("saga recovery: {e}")),
    }
    Ok(())
}

/// Step 2: swaps still open. Ones cut off before the mint signed their
/// outputs (NUT-09 knows none of them) are dropped; their inputs are
/// checked in step 3. Ones the mint did sign were restored by step 1.
async fn drop_stale_swaps(w: &Wallet, out: &mut Reconciled) -> Result<()> {
    let connector = w.mint_connector();
    for s in &my_sagas(w).await? {
        if s.state != WalletSagaState::Swap(SwapSagaState::SwapRequested) {
            continue;
        }
        let OperationData::Swap(d) = &s.data else {
            continue;
        };
        let outputs = d.blinded_messages.clone().unwrap_or_default();
        let signed = if outputs.is_empty() {
            0
        } else {
            match connector.post_restore(RestoreRequest { outputs }).await {
                Ok(r) => r.signatures.len(),
                Err(e) => {
                    out.problems
                        .push(format!("restore look-up for swap {}: {e}", s.id));
                    continue;
                }
            }
        };
        if signed == 0 {
            w.localstore.release_proofs(&s.id).await.map_err(werr)?;
            w.localstore.delete_saga(&s.id).await.map_err(werr)?;
            out.stale_swaps_dropped += 1;
            out.left_pending = out.left_pending.saturating_sub(1);
        }
    }
    Ok(())
}

/// Where the wallet's proofs went, as its own records say.
struct Ledger {
    /// Unfinished operations.
    live: HashSet<uuid::Uuid>,
    /// Proofs of sends in flight.
    in_flight: HashSet<cdk::nuts::PublicKey>,
    /// Which outgoing transaction (if any) each proof went out in.
    sent_in: HashMap<cdk::nuts::PublicKey, TransactionStatus>,
    /// The proofs of each outgoing transaction, by operation.
    tx_ys: HashMap<uuid::Uuid, Vec<cdk::nuts::PublicKey>>,
}

async fn ledger(w: &Wallet) -> Result<Ledger> {
    let sagas = my_sagas(w).await?;
    let live = sagas.iter().map(|s| s.id).collect();
    let mut in_flight = HashSet::new();
    for s in &sagas {
        if let OperationData::Send(d) = &s.data {
            for p in d.proofs.iter().flatten() {
                if let Ok(y) = p.y() {
                    in_flight.insert(y);
                }
            }
        }
    }
    let mut sent_in = HashMap::new();
    let mut tx_ys = HashMap::new();
    for t in w
        .list_transactions(Some(TransactionDirection::Outgoing))
        .await
        .map_err(werr)?
    {
        for y in &t.ys {
            sent_in.insert(*y, t.status);
        }
        if let Some(op) = t.saga_id {
            tx_ys.insert(op, t.ys.clone());
        }
    }
    Ok(Ledger {
        live,
        in_flight,
        sent_in,
        tx_ys,
    })
}

/// What step 3 found: the mint's word on each proof, and the ledger.
struct Checked {
    at_mint: HashMap<cdk::nuts::PublicKey, State>,
    ledger: Ledger,
}

/// What step 3 does with one proof.
enum Verdict {
    /// The mint says spent: mark it spent.
    Spent,
    /// Reserved by a dead operation, unspent at the mint: spendable again.
    Release,
    /// Locked to someone else, held by no token in flight: counted only.
    LockedOrphan,
    /// Pending at the mint: held out of spending until it settles.
    Hold,
    /// Nothing to change.
    Keep,
}

fn verdict(p: &ProofInfo, at_mint: Option<&State>, l: &Ledger) -> Verdict {
    let orphan =
        !l.in_flight.contains(&p.y) && p.used_by_operation.is_none_or(|op| !l.live.contains(&op));
    match at_mint {
        Some(State::Spent) => Verdict::Spent,
        Some(State::Unspent) if orphan && matches!(p.state, State::Reserved | State::Pending) => {
            if is_locked_proof(&p.proof) {
                Verdict::LockedOrphan
            } else {
                Verdict::Release
            }
        }
        // Pending at the mint (an interrupted swap it has not settled),
        // yet spendable or reserved by a dead operation here (cdk's
        // rollback marks a cut-off swap's inputs unspent): spending them
        // would make a token no one can redeem. Hold them until the mint
        // settles them.
        Some(State::Pending)
            if p.state == State::Unspent || (orphan && p.state == State::Reserved) =>
        {
            Verdict::Hold
        }
        // Marked as sent, but never part of a token: cut off between
        // marking and recording the send, or rolled back.
        Some(State::Unspent)
            if orphan
                && p.state == State::PendingSpent
                && l.sent_in
                    .get(&p.y)
                    .is_none_or(|s| *s == TransactionStatus::Failed)
                && !is_locked_proof(&p.proof) =>
        {
            Verdict::Release
        }
        _ => Verdict::Keep,
    }
}

/// The mint's state (NUT-07) of each of `proofs`.
async fn mint_states(
    w: &Wallet,
    proofs: &[ProofInfo],
) -> Result<HashMap<cdk::nuts::PublicKey, State>> {
    let connector = w.mint_connector();
    let mut at_mint = HashMap::new();
    for chunk in proofs.chunks(200) {
        let ys = chunk.iter().map(|p| p.y).collect();
        let resp = connector
            .post_check_state(CheckStateRequest { ys })
            .await
            .map_err(|e| cdk_err("proof state check", e))?;
        for st in resp.states {
            at_mint.insert(st.y, st.state);
        }
    }
    Ok(at_mint)
}

/// Step 3: NUT-07 on every proof not known spent; spent ones are marked
/// spent, reserved ones of dead operations released, ones the mint holds
/// pending held.
async fn check_proofs(w: &Wallet, out: &mut Reconciled) -> Result<Checked> {
    let ledger = ledger(w).await?;
    let proofs = w
        .localstore
        .get_proofs(
            Some(w.mint_url.clone()),
            Some(w.unit.clone()),
            Some(vec![
                State::Unspent,
                State::Reserved,
                State::Pending,
                State::PendingSpent,
            ]),
            None,
        )
        .await
        .map_err(werr)?;
    let at_mint = mint_states(w, &proofs).await?;
    let (mut to_spent, mut to_release, mut to_hold) = (Vec::new(), Vec::new(), Vec::new());
    for p in &proofs {
        let amount: u64 = p.proof.amount.into();
        match verdict(p, at_mint.get(&p.y), &ledger) {
            Verdict::Spent => {
                to_spent.push(p.y);
                if p.state != State::PendingSpent {
                    out.marked_spent += amount;
                }
            }
            Verdict::Release => {
                to_release.push(p.y);
                out.released += amount;
            }
            Verdict::LockedOrphan => out.locked_orphans += amount,
            Verdict::Hold => {
                to_hold.push(p.y);
                out.held_at_mint += amount;
            }
            Verdict::Keep => {}
        }
    }
    for (ys, state) in [
        (to_spent, State::Spent),
        (to_release, State::Unspent),
        (to_hold, State::Pending),
    ] {
        if !ys.is_empty() {
            w.localstore
                .update_proofs_state(ys, state)
                .await
                .map_err(werr)?;
        }
    }
    Ok(Checked { at_mint, ledger })
}

/// What step 4 looks a send up in.
struct Traces {
    /// Tokens of sends in flight before recovery (step 0).
    saga_tokens: HashMap<String, String>,
    /// Step 3's findings.
    checked: Checked,
    /// Sends the wallet still has pending (can be revoked).
    pending: HashSet<String>,
}

/// Step 4, one send made but never journaled nor handed out: take it back.
async fn take_back(
    w: &Wallet,
    j: &mut Journal,
    rec: &SendRecord,
    traces: &Traces,
    out: &mut Reconciled,
) -> Result<()> {
    let token = rec
        .token
        .clone()
        .or_else(|| traces.saga_tokens.get(&rec.op_id).cloned());
    if let Some(t) = &token {
        if j.token_in_jobs(t)? {
            j.send_state(&rec.op_id, SendState::Journaled, "found in a journaled job")?;
            return Ok(());
        }
    }
    let op = parse_op(&rec.op_id)?;
    if traces.pending.contains(&rec.op_id) {
        match w.revoke_send(op).await {
            Ok(a) => reclaimed(j, rec, a.into(), "taken back into", out)?,
            Err(e) => out
                .problems
                .push(cdk_err("taking back an unjournaled token", e).to_string()),
        }
        return Ok(());
    }
    put_back(w, j, rec, token.as_deref(), op, &traces.checked, out).await
}

/// Step 4 for a send whose record is gone from the wallet: find its
/// proofs by the token, else by its transaction, and put back the ones the
/// mint says are unspent (the token never left this wallet).
async fn put_back(
    w: &Wallet,
    j: &mut Journal,
    rec: &SendRecord,
    token: Option<&str>,
    op: uuid::Uuid,
    checked: &Checked,
    out: &mut Reconciled,
) -> Result<()> {
    let ys: Vec<cdk::nuts::PublicKey> = match token.map(Token::from_str) {
        Some(Ok(t)) => t
            .token_secrets()
            .into_iter()
            .filter_map(|s| cdk::dhke::hash_to_curve(&s.to_bytes()).ok())
            .collect(),
        _ => checked.ledger.tx_ys.get(&op).cloned().unwrap_or_default(),
    };
    let held = if ys.is_empty() {
        Vec::new()
    } else {
        w.localstore.get_proofs_by_ys(ys).await.map_err(werr)?
    };
    let back: Vec<_> = held
        .iter()
        .filter(|p| {
            matches!(
                p.state,
                State::PendingSpent | State::Reserved | State::Pending
            ) && checked.at_mint.get(&p.y) == Some(&State::Unspent)
        })
        .collect();
    if back.is_empty() {
        j.send_state(
            &rec.op_id,
            SendState::Abandoned,
            "interrupted before a token was handed out; nothing left in flight",
        )?;
        return Ok(());
    }
    let a: u64 = back.iter().map(|p| u64::from(p.proof.amount)).sum();
    if back.iter().any(|p| is_locked_proof(&p.proof)) {
        out.locked_orphans += a;
        out.problems.push(format!(
            "a token of {a} sat locked to a worker was never journaled (send {})",
            rec.op_id
        ));
        j.send_state(
            &rec.op_id,
            SendState::Stranded,
            "locked to the worker, never journaled; refundable after the locktime",
        )?;
        return Ok(());
    }
    w.localstore
        .update_proofs_state(back.iter().map(|p| p.y).collect(), State::Unspent)
        .await
        .map_err(werr)?;
    reclaimed(j, rec, a, "put back into", out)
}

/// Count a send taken back (`a` sat, `how` they came back) and journal it.
fn reclaimed(
    j: &mut Journal,
    rec: &SendRecord,
    a: u64,
    how: &str,
    out: &mut Reconciled,
) -> Result<()> {
    out.reclaimed_sends += 1;
    out.reclaimed_amount += a;
    j.send_state(
        &rec.op_id,
        SendState::Reclaimed,
        &format!("never journaled: {a} sat {how} the wallet"),
    )
}
