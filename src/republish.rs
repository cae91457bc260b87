//! `republish`: which journaled jobs go out again, and to which relays.
//! A job whose payment was reclaimed must never go out again; a journal
//! that cannot say whether it was is an error, never "not reclaimed".

use nostr_sdk::prelude::*;

use crate::config;
use crate::error::{Error, Result};
use crate::journal::{JobRecord, Journal};
use crate::notice::short_id;
use crate::protocol::JobRef;

/// Whether the job's payment was reclaimed (or found spent) already.
/// A failed journal read, or a journaled id that is not one, is an error.
pub fn is_reclaimed(journal: &Journal, rec: &JobRecord) -> Result<bool> {
    let id = EventId::from_hex(&rec.id)
        .map_err(|e| Error::Journal(format!("holds a job with a bad id `{}`: {e}", rec.id)))?;
    Ok(journal.final_claim(&id)?.is_some())
}

/// The jobs to republish: with `all`, every journaled job no relay has
/// accepted yet whose payment was not reclaimed; else the jobs named
/// (each must be in the journal, none reclaimed).
pub fn select(journal: &Journal, all: bool, jobs: &[String]) -> Result<Vec<JobRecord>> {
    let records: Vec<JobRecord> = if all {
        let mut keep = Vec::new();
        for r in journal.unpublished()? {
            if !is_reclaimed(journal, &r)? {
                keep.push(r);
            }
        }
        keep
    } else {
        jobs.iter()
            .map(|j| {
                let r = JobRef::parse(j).map_err(Error::input)?;
                journal
                    .get(&r.id)?
                    .ok_or_else(|| Error::input(format!("job {} is not in the journal", r.id)))
            })
            .collect::<Result<Vec<_>>>()?
    };
    for r in &records {
        if journal.is_checking(&r.id)? {
            return Err(Error::input(format!(
                "job {} never passed its pre-flight checks (its rerun was cut off); run `rerun` again instead",
                short_id(&r.id)
            )));
        }
        if is_reclaimed(journal, r)? {
            return Err(Error::input(format!(
                "job {}'s payment was reclaimed; it cannot be published again (dispatch a new job)",
                short_id(&r.id)
            )));
        }
    }
    Ok(records)
}

/// Where a job goes: the `--relay` flags if any (`flags`), else the
/// relays it was journaled with, else the configured ones.
pub fn relays_for(
    rec: &JobRecord,
    flags: &[RelayUrl],
    configured: &[RelayUrl],
) -> Result<Vec<RelayUrl>> {
    let urls = if !flags.is_empty() {
        flags.to_vec()
    } else {
        // Stored relays were valid when journaled: unreadable ones mean a
        // damaged journal, said as such, never silently other relays.
        let own = config::parse_relays(rec.relays.iter().map(String::as_str)).map_err(|e| {
            Error::Journal(format!(
                "job {}: its journaled relays are unreadable ({e}); pass --relay URL",
                short_id(&rec.id)
            ))
        })?;
        if own.is_empty() {
            configured.to_vec()
        } else {
            own
        }
    };
    if urls.is_empty() {
        return Err(Error::input(format!(
            "job {} has no relays on record: pass --relay URL",
            short_id(&rec.id)
        )));
    }
    Ok(urls)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A journal holding one unpublished job.
    fn journal_with_a_job(dir: &std::path::Path) -> (std::path::PathBuf, Journal, JobRecord) {
        let path = dir.join("journal.sqlite");
        let mut j = Journal::open(&path).unwrap();
        let keys = Keys::generate();
        let spec = crate::dispatch::JobSpec {
            worker: Keys::generate().public_key(),
            p_tag: crate::protocol::PTag::Worker,
            cmd: "echo".into(),
            args: vec![],
            token: None,
            parent: None,
            env: vec![],
            secrets: vec![],
            content: String::new(),
        };
        let ev =
            crate::dispatch::sign(&crate::dispatch::build(&spec, &keys).unwrap(), &keys).unwrap();
        let relays = [RelayUrl::parse("ws://127.0.0.1:1").unwrap()];
        crate::dispatch::journal_new(&mut j, &keys, &spec, &ev, &relays, None, None).unwrap();
        let rec = j.get(&ev.id).unwrap().unwrap();
        (path, j, rec)
    }

    #[test]
    fn an_unreclaimed_job_is_selected_with_its_own_relays() {
        let dir = tempfile::tempdir().unwrap();
        let (_, j, rec) = journal_with_a_job(dir.path());
        assert!(!is_reclaimed(&j, &rec).unwrap());
        let all = select(&j, true, &[]).unwrap();
        assert_eq!(all.len(), 1);
        let urls = relays_for(&all[0], &[], &[]).unwrap();
        assert_eq!(urls.len(), 1);
        let flags = [RelayUrl::parse("ws://127.0.0.1:2").unwrap()];
        assert_eq!(relays_for(&all[0], &flags, &[]).unwrap(), flags.to_vec());
    }

    #[test]
    fn a_journal_that_cannot_be_read_is_an_error_not_never_reclaimed() {
        let dir = tempfile::tempdir().unwrap();
        let (path, j, rec) = journal_with_a_job(dir.path());
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch("DROP TABLE claims").unwrap();
        assert!(matches!(is_reclaimed(&j, &rec), Err(Error::Journal(_))));
        assert!(select(&j, true, &[]).is_err());
        assert!(select(&j, false, std::slice::from_ref(&rec.id)).is_err());
    }

    #[test]
    fn unreadable_journaled_relays_are_an_error_not_other_relays() {
        let dir = tempfile::tempdir().unwrap();
        let (_, _, mut rec) = journal_with_a_job(dir.path());
        rec.relays = vec!["not a relay".into()];
        let configured = [RelayUrl::parse("ws://127.0.0.1:3").unwrap()];
        let e = relays_for(&rec, &[], &configured).unwrap_err();
        assert!(matches!(e, Error::Journal(_)), "{e}");
        // --relay still overrides what the journal says.
        assert_eq!(
            relays_for(&rec, &configured, &[]).unwrap(),
            configured.to_vec()
        );
    }
}
