//! A new job of `rerun` from its resolved inputs to its relays: paid (a
//! token handed in, the worker's freelist, or the wallet), signed,
//! journaled and published on the command's one relay pool. A token
//! handed in goes through [`jobctl::round`] (checks, commit and connects
//! at once); a token the wallet makes or locks is settled first.

use jobctl::deadline::Deadline;
use jobctl::dispatch::{self, DispatchReport, JobSpec};
use jobctl::error::{Error, Result};
use jobctl::journal::Journal;
use jobctl::keys::{FileLock, SigningKey};
use jobctl::outbox;
use jobctl::payment::PaymentToken;
use jobctl::payment_plan::{self, Payer, PaymentOut};
use jobctl::request::{self, Base};
use jobctl::round::{self, Round};
use nostr_sdk::prelude::*;

use super::flags::{payment_flags, token};
use super::report::{dispatching_line, show_notices};
use super::{dry_run, Rerun};

/// The journal of a new job: open already (or not made yet), or opening
/// on the runtime's blocking thread while the job is prepared.
pub(super) enum JournalSoon {
    /// Open, or `None` when there is no journal yet.
    Ready(Option<Journal>),
    /// Opening ([`Journal::open_existing`]).
    Opening(tokio::task::JoinHandle<Result<Option<Journal>>>),
}

impl JournalSoon {
    /// The journal once it is open.
    async fn get(self) -> Result<Option<Journal>> {
        match self {
            JournalSoon::Ready(j) => Ok(j),
            JournalSoon::Opening(opening) => opening
                .await
                .map_err(|e| Error::Journal(format!("opening the journal did not finish: {e}")))?,
        }
    }
}

/// A new job of `rerun`, resolved and not yet paid or signed.
pub(super) struct NewJob<'a> {
    pub(super) spec: JobSpec,
    pub(super) base: Option<&'a Base>,
    pub(super) key: &'a SigningKey,
    pub(super) idem: Option<&'a str>,
}

impl Rerun<'_> {
    /// Pay, sign, journal and publish a new job; `None` for `--dry-run`
    /// (the signed job is printed, nothing is published).
    pub(super) fn new_job(
        &self,
        rt: &tokio::runtime::Runtime,
        client: &Client,
        job: NewJob<'_>,
        journal: JournalSoon,
    ) -> Result<Option<DispatchReport>> {
        let a = self.a;
        if a.dry_run && a.amount.is_some() {
            return Err(Error::input(
                "--dry-run cannot be combined with --amount: making the token takes money out of the wallet",
            ));
        }
        let flags = payment_flags(self.cfg, a);
        let payer = self.payer(client, &job);
        let given = match a.amount {
            Some(_) => None,
            None => rt.block_on(self.token_or_free(&payer))?,
        };
        if a.dry_run {
            let spec = JobSpec {
                token: given,
                ..job.spec
            };
            let event = dispatch::sign(&dispatch::build(&spec, &job.key.keys)?, &job.key.keys)?;
            return dry_run(self.ctx, &spec, &event).map(|_| None);
        }
        if !payment_plan::uses_wallet(&flags) {
            return self
                .overlapped(rt, &payer, &flags, job, given, journal)
                .map(Some);
        }
        let mut journal = rt.block_on(journal.get())?;
        let (token, wallet_lock) = self.pay(rt, &payer, &flags, given, &mut journal)?;
        let job = NewJob {
            spec: JobSpec { token, ..job.spec },
            ..job
        };
        // Paid and checked already: nothing left that could refuse it.
        let gate = round::Gate {
            checks: async { Ok(()) },
            may_refuse: false,
        };
        let advice = async { Vec::new() };
        let journal = JournalSoon::Ready(journal);
        let sent = self.send(rt, client, &job, journal, wallet_lock, gate, advice)?;
        Ok(Some(sent.report))
    }

    /// The job's payment through the wallet ([`payment_plan::plan`]), and
    /// the wallet's lock when the wallet made or locked the token (held
    /// until the job carrying it is journaled). A token the wallet makes
    /// is recorded in the journal (created here if need be) before the
    /// mint is even asked.
    fn pay(
        &self,
        rt: &tokio::runtime::Runtime,
        payer: &Payer<'_>,
        flags: &payment_plan::PaymentFlags,
        given: Option<PaymentToken>,
        journal: &mut Option<Journal>,
    ) -> Result<(Option<PaymentToken>, Option<FileLock>)> {
        if journal.is_none() && payment_plan::uses_wallet(flags) {
            *journal = Some(self.ctx.journal()?);
        }
        let mut out = PaymentOut::default();
        let token = rt.block_on(payment_plan::plan(
            payer,
            flags,
            given,
            journal.as_mut(),
            &mut out,
        ));
        show_notices(self.ctx, &out.notices);
        Ok((token?, out.wallet_lock))
    }

    /// The payment of a job that is not a plain new one (a Hive CI run's):
    /// [`Self::token_or_free`], then [`Self::pay`].
    pub(super) fn payment(
        &self,
        rt: &tokio::runtime::Runtime,
        client: &Client,
        job: &NewJob<'_>,
        journal: &mut Option<Journal>,
    ) -> Result<(Option<PaymentToken>, Option<FileLock>)> {
        let flags = payment_flags(self.cfg, self.a);
        let payer = self.payer(client, job);
        let given = match self.a.amount {
            Some(_) => None,
            None => rt.block_on(self.token_or_free(&payer))?,
        };
        self.pay(rt, &payer, &flags, given, journal)
    }

    /// Who pays whom for `job`, through the dispatch's pool `client`.
    fn payer<'b>(&'b self, client: &'b Client, job: &NewJob<'_>) -> Payer<'b> {
        Payer {
            settings: &self.ctx.settings,
            worker: job.spec.worker,
            refund: job.key.keys.public_key(),
            relays: &self.relays,
            client,
            deadline: self.deadline,
            now: self.ctx.now(),
        }
    }

    /// A job paid with a token handed in (or unpaid): journaled while the
    /// pool connects and the token is checked at its mint; the worker's
    /// advertisement is read beside the commit and the publish unless it
    /// decides whether the job may go.
    fn overlapped(
        &self,
        rt: &tokio::runtime::Runtime,
        payer: &Payer<'_>,
        flags: &payment_plan::PaymentFlags,
        job: NewJob<'_>,
        token: Option<PaymentToken>,
        journal: JournalSoon,
    ) -> Result<DispatchReport> {
        let job = NewJob {
            spec: JobSpec { token, ..job.spec },
            ..job
        };
        let token = job.spec.token.clone();
        let mut notices = Vec::new();
        let gate = round::Gate {
            checks: payment_plan::gate(payer, flags, token.as_ref(), &mut notices),
            may_refuse: payment_plan::gate_may_refuse(flags, token.as_ref()),
        };
        let advice = payment_plan::advise(payer, flags, token.as_ref());
        let sent = self.send(rt, payer.client, &job, journal, None, gate, advice);
        show_notices(self.ctx, &notices);
        let sent = sent?;
        show_notices(self.ctx, &sent.advice);
        Ok(sent.report)
    }

    /// Sign `job` and send it in one round ([`jobctl::round`]): `gate`
    /// beside the journal commit, `advice` beside both, the
    /// `dispatching` line just before the send; `wallet_lock` (a token
    /// the wallet made) is released once the job is journaled.
    #[allow(clippy::too_many_arguments)]
    fn send<G, A>(
        &self,
        rt: &tokio::runtime::Runtime,
        client: &Client,
        job: &NewJob<'_>,
        journal: JournalSoon,
        wallet_lock: Option<FileLock>,
        gate: round::Gate<G>,
        advice: A,
    ) -> Result<round::Sent>
    where
        G: std::future::Future<Output = Result<()>>,
        A: std::future::Future<Output = jobctl::notice::Notices>,
    {
        // The first job makes the journal.
        let journal = async {
            match journal.get().await? {
                Some(j) => Ok(j),
                None => self.ctx.journal(),
            }
        };
        let (spec, keys) = (&job.spec, &job.key.keys);
        let event = dispatch::sign(&dispatch::build(spec, keys)?, keys)?;
        let round = Round {
            client,
            relays: &self.relays,
            deadline: self.deadline,
            min_accept: self.min_accept,
            outbox: !self.a.no_outbox && self.cfg.outbox,
        };
        let line = |route: &outbox::Route| {
            if !self.a.json {
                let (n, inbox) = (self.relays.len(), route.inbox.len());
                self.ctx.say(dispatching_line(spec, n, inbox, job.base));
            }
        };
        let new = round::NewJob {
            spec: spec.clone(),
            event,
            keys: keys.clone(),
            idempotency_key: job.idem.map(str::to_string),
            rerun_of: job.base.map(|b| b.id),
            wallet_lock,
        };
        rt.block_on(round::dispatch(round, journal, new, gate, advice, line))
    }

    /// [`token`], except that with no token given at all, a worker whose
    /// freelist holds our key needs none: the job goes unpaid, and says why.
    async fn token_or_free(&self, payer: &Payer<'_>) -> Result<Option<PaymentToken>> {
        let a = self.a;
        let none_given = !a.unpaid && a.token.is_none() && request::env_token().is_none();
        if none_given && !self.relays.is_empty() {
            // A third of the command's deadline: the publish needs the rest.
            let budget = Deadline::after(self.deadline.share(3));
            let (me, relays, worker) = (payer.refund, payer.relays, payer.worker);
            let free = payment_plan::free_reason(payer.client, me, relays, worker, budget);
            if let Some(r) = free.await {
                self.ctx.say(format!("no payment needed: {r}"));
                return Ok(None);
            }
        }
        token(a)
    }
}
