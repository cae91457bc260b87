//! The journal's unit tests.

use super::*;
use crate::job_state::JobState;
use crate::relays::{RelayOutcome, RelayStatus};

fn event(keys: &Keys, n: u64) -> Event {
    EventBuilder::new(Kind::Custom(5100), "")
        .tags([Tag::custom(TagKind::Custom("cmd".into()), [n.to_string()])])
        .sign_with_keys(keys)
        .expect("sign")
}

fn new_job<'a>(e: &'a Event, relays: &'a [RelayUrl], key: Option<&'a str>) -> NewJob<'a> {
    NewJob {
        event: e,
        worker: e.pubkey,
        cmd: "act",
        args: &[],
        token: Some("cashuBsecret"),
        payment: None,
        relays,
        idempotency_key: key,
        content_hash: "h",
        rerun_of: None,
    }
}

/// `relay` accepted a job.
fn accepted_by(relay: &RelayUrl) -> RelayOutcome {
    RelayOutcome {
        url: relay.to_string(),
        status: RelayStatus::Accepted,
        message: String::new(),
        latency_ms: 2,
    }
}

#[test]
fn write_read_and_transitions() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("j/journal.sqlite");
    let keys = Keys::generate();
    let e = event(&keys, 1);
    let relays = vec![RelayUrl::parse("ws://127.0.0.1:1").expect("url")];
    {
        let mut j = Journal::open(&path).expect("open");
        j.record_dispatch(&new_job(&e, &relays, Some("ci-1")))
            .expect("record");
        assert!(j.record_dispatch(&new_job(&e, &relays, None)).is_err());
        let r = j.get(&e.id).expect("get").expect("row");
        assert_eq!(r.state, JobState::Unpublished);
        assert_eq!(r.token.as_deref(), Some("cashuBsecret"));
        assert_eq!(j.unpublished().expect("unpublished").len(), 1);
        let out = accepted_by(&relays[0]);
        j.record_outcomes(&e.id, std::slice::from_ref(&out))
            .expect("outcomes");
        // A later failure does not downgrade the acceptance.
        let failed = RelayOutcome {
            status: RelayStatus::Failed,
            ..out
        };
        j.record_outcomes(&e.id, &[failed]).expect("outcomes");
        assert_eq!(j.accepted_relays(&e.id).expect("acc").len(), 1);
        assert!(j.unpublished().expect("unpublished").is_empty());
        assert!(j
            .record_state(&e.id, JobState::Running, "go", 5, None, None, None)
            .expect("state"));
        assert!(!j
            .record_state(&e.id, JobState::Running, "go", 6, None, None, None)
            .expect("state"));
        assert!(j
            .record_state(&e.id, JobState::Success, "", 7, Some(0), Some(1.5), None)
            .expect("state"));
        assert_eq!(j.timeline(&e.id).expect("timeline").len(), 5);
    }
    // Reopens with the same data, 0600.
    let j = Journal::open(&path).expect("reopen");
    assert_eq!(
        j.by_idempotency_key("ci-1")
            .expect("key")
            .expect("row")
            .state,
        JobState::Success
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn concurrent_first_opens_create_it_once() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("new/journal.sqlite");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let p = path.clone();
            std::thread::spawn(move || Journal::open(&p).map(|_| ()))
        })
        .collect();
    for h in handles {
        h.join().expect("thread").expect("open");
    }
    let j = Journal::open(&path).expect("reopen");
    let v: i64 = j
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(v, MIGRATIONS.len() as i64);
}

#[test]
fn a_journal_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("journal.sqlite");
    drop(Journal::open(&path).expect("open"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let err = Journal::open(&path).err().expect("refused");
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

#[test]
fn sends_move_to_journaled_with_their_job() {
    let dir = tempfile::tempdir().expect("dir");
    let mut j = Journal::open(&dir.path().join("j.sqlite")).expect("open");
    j.send_prepared("op1", "http://m", 5, "job")
        .expect("prepared");
    j.send_created("op1", "cashuBsecret").expect("created");
    assert_eq!(
        j.send("op1").expect("get").expect("row").state,
        SendState::Created
    );
    let keys = Keys::generate();
    let e = event(&keys, 1);
    let relays = vec![RelayUrl::parse("ws://127.0.0.1:1").expect("url")];
    j.record_dispatch(&new_job(&e, &relays, None))
        .expect("record");
    let r = j.send("op1").expect("get").expect("row");
    assert_eq!(r.state, SendState::Journaled);
    assert_eq!(r.job_id, Some(e.id.to_hex()));
    assert!(j.token_in_jobs("cashuBsecret").expect("query"));
}

#[test]
fn garbage_is_an_error_not_a_fresh_start() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("journal.sqlite");
    std::fs::write(&path, vec![0x42u8; 8192]).expect("write");
    let err = Journal::open(&path).err().expect("must fail");
    assert!(err.to_string().contains("journal"), "{err}");
    assert_eq!(std::fs::read(&path).expect("read"), vec![0x42u8; 8192]);
}

#[test]
fn a_refused_job_is_withdrawn_and_a_sent_one_never() {
    let dir = tempfile::tempdir().expect("dir");
    let mut j = Journal::open(&dir.path().join("journal.sqlite")).expect("open");
    let keys = Keys::generate();
    let relays = vec![RelayUrl::parse("ws://127.0.0.1:1").expect("url")];
    let (fresh, passed, sent) = (event(&keys, 1), event(&keys, 2), event(&keys, 3));
    j.record_checking(&new_job(&fresh, &relays, Some("k")))
        .expect("record");
    j.record_checking(&new_job(&passed, &relays, None))
        .expect("record");
    j.record_dispatch(&new_job(&sent, &relays, None))
        .expect("record");
    // Only a `checking` row is written unflushed; the connection is back
    // to flushing every commit (the `checks_passed` that allows the send).
    let synchronous: i64 = j
        .sql()
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(synchronous, 2, "FULL");
    // A job whose checks run reads as unpublished but is not one to send.
    let rec = j.get(&fresh.id).expect("get").expect("row");
    assert_eq!(rec.state, JobState::Unpublished);
    assert!(j.is_checking(&fresh.id.to_hex()).expect("checking"));
    let sendable: Vec<String> = j
        .unpublished()
        .expect("list")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(sendable, vec![sent.id.to_hex()]);
    j.checks_passed(&passed.id).expect("passed");
    assert!(!j.is_checking(&passed.id.to_hex()).expect("checking"));
    assert_eq!(j.unpublished().expect("list").len(), 2);

    j.withdraw(&fresh.id).expect("withdraw");
    j.withdraw(&passed.id).expect("withdraw");
    j.withdraw(&sent.id).expect("withdraw");
    assert!(j.get(&fresh.id).expect("get").is_none(), "taken back");
    assert!(j.by_idempotency_key("k").expect("key").is_none());
    assert!(j.timeline(&fresh.id).expect("timeline").is_empty());
    assert!(j.get(&passed.id).expect("get").is_some(), "checked: kept");
    assert!(
        j.get(&sent.id).expect("get").is_some(),
        "never checking: kept"
    );

    // Relays found later are added to the job's own list, once.
    let inbox = RelayUrl::parse("ws://127.0.0.1:2").expect("url");
    j.add_job_relays(&sent.id, &[inbox.clone(), relays[0].clone()])
        .expect("add");
    j.add_job_relays(&sent.id, std::slice::from_ref(&inbox))
        .expect("add");
    let rec = j.get(&sent.id).expect("get").expect("row");
    assert_eq!(rec.relays, vec![relays[0].to_string(), inbox.to_string()]);
}

/// `fold` puts what was committed into the database file itself (a copy of
/// that file alone holds the job), and the bookkeeping after it stays in
/// the log, where the next open finds it.
#[test]
fn a_fold_writes_the_file_and_the_bookkeeping_after_it_stays_in_the_log() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("journal.sqlite");
    let keys = Keys::generate();
    let e = event(&keys, 1);
    let relays = vec![RelayUrl::parse("ws://127.0.0.1:1").expect("url")];
    let accepted = accepted_by(&relays[0]);
    {
        let mut j = Journal::open(&path).expect("open");
        j.record_dispatch(&new_job(&e, &relays, None))
            .expect("record");
        j.bookkeeping_only();
        j.fold();
        j.record_outcomes(&e.id, std::slice::from_ref(&accepted))
            .expect("outcomes");
    }
    let wal = dir.path().join("journal.sqlite-wal");
    assert!(
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) > 0,
        "the close after a fold leaves the log"
    );
    // The database file alone, without its log: the folded job is in it.
    let alone = dir.path().join("alone.sqlite");
    std::fs::copy(&path, &alone).expect("copy");
    let j = Journal::open(&alone).expect("open the copy");
    assert!(j.get(&e.id).expect("get").is_some());
    // The file with its log: the job and its verdict.
    let j = Journal::open(&path).expect("reopen");
    assert!(j.get(&e.id).expect("get").is_some());
    assert_eq!(j.accepted_relays(&e.id).expect("accepted").len(), 1);
    drop(j);
    // An ordinary close folds the log again (and removes it).
    assert!(!wal.exists(), "an ordinary close checkpoints");
}
