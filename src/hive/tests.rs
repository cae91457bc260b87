//! Unit tests of the Hive CI wire format: addresses, announcements, and
//! 5401/5402 round trips and bad input (helpers shared with `tests_exec`).

use nostr_sdk::prelude::*;

use super::repo::{newest_announcement, AddressError, Announcement, RepoRef};
use super::run::*;
use crate::protocol::JobState;

pub(super) fn keys(n: u8) -> Keys {
    Keys::new(SecretKey::from_slice(&[n; 32]).expect("valid"))
}

pub(super) fn relay(s: &str) -> RelayUrl {
    RelayUrl::parse(s).expect("relay")
}

pub(super) fn repo() -> RepoRef {
    RepoRef {
        owner: keys(1).public_key(),
        identifier: "jobctl".into(),
        relays: vec![
            relay("wss://relay.example.com"),
            relay("ws://127.0.0.1:7777"),
        ],
    }
}

pub(super) fn sign(b: EventBuilder, k: &Keys, at: u64) -> Event {
    b.custom_created_at(Timestamp::from(at))
        .sign_with_keys(k)
        .expect("sign")
}

pub(super) fn tags(e: &Event) -> Vec<Vec<String>> {
    e.tags.iter().map(|t| t.as_slice().to_vec()).collect()
}

#[test]
fn every_address_form_names_the_same_repository() {
    let r = repo();
    let hex = r.owner.to_hex();
    let npub = r.owner.to_bech32().unwrap();
    let from_naddr = RepoRef::parse(&r.naddr()).unwrap();
    assert_eq!(from_naddr, r);
    assert_eq!(RepoRef::parse(&format!("nostr:{}", r.naddr())).unwrap(), r);
    let url = r.nostr_url();
    assert!(
        url.starts_with(&format!(
            "nostr://{npub}/relay.example.com/ws%3A%2F%2F127.0.0.1%3A7777"
        )),
        "{url}"
    );
    assert_eq!(RepoRef::parse(&url).unwrap(), r);
    let coord = RepoRef::parse(&format!("30617:{hex}:jobctl")).unwrap();
    assert_eq!(
        (coord.owner, coord.identifier.as_str()),
        (r.owner, "jobctl")
    );
    assert!(coord.relays.is_empty());
    assert_eq!(coord.coordinate(), format!("30617:{hex}:jobctl"));
    // ngit's extras: a protocol and a git user before the owner.
    let ssh = RepoRef::parse(&format!("nostr://ssh/git@{npub}/relay.damus.io/jobctl")).unwrap();
    assert_eq!(ssh.relays, vec![relay("wss://relay.damus.io")]);
    let plain = RepoRef::parse(&format!("nostr://{npub}/jobctl")).unwrap();
    assert!(plain.relays.is_empty() && plain.identifier == "jobctl");
}

#[test]
fn bad_addresses_say_why() {
    let npub = keys(1).public_key().to_bech32().unwrap();
    let hex = keys(1).public_key().to_hex();
    let cases: Vec<(String, AddressError)> = vec![
        ("  ".into(), AddressError::Empty),
        (format!("30617:{hex}"), AddressError::MissingIdentifier),
        (format!("30617:{hex}:"), AddressError::MissingIdentifier),
        (
            "30617:nothex:x".into(),
            AddressError::BadPubkey("nothex".into()),
        ),
        (format!("30023:{hex}:x"), AddressError::WrongKind(30023)),
        (format!("nostr://{npub}"), AddressError::MissingIdentifier),
        (
            "nostr://alice@example.com/repo".into(),
            AddressError::Nip05("alice@example.com".into()),
        ),
        (
            "naddr1qqqq".into(),
            AddressError::BadNaddr("naddr1qqqq".into()),
        ),
        (
            "https://github.com/x/y".into(),
            AddressError::Unrecognised("https://github.com/x/y".into()),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(RepoRef::parse(&input), Err(want), "{input}");
    }
    let other = Nip19Coordinate::new(
        Coordinate::new(Kind::Custom(30023), keys(1).public_key()).identifier("x"),
        Vec::<RelayUrl>::new(),
    );
    assert_eq!(
        RepoRef::parse(&other.to_bech32().unwrap()),
        Err(AddressError::WrongKind(30023))
    );
    let e: crate::Error = AddressError::Empty.into();
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn an_announcement_gives_relays_and_maintainers() {
    let owner = keys(1);
    let a = GitRepositoryAnnouncement {
        id: "jobctl".into(),
        name: Some("jobctl".into()),
        description: None,
        web: vec![],
        clone: vec![Url::parse("https://git.example/jobctl.git").unwrap()],
        relays: vec![relay("wss://relay.example.com")],
        euc: None,
        maintainers: vec![keys(2).public_key(), owner.public_key()],
    };
    let old = sign(
        EventBuilder::git_repository_announcement(a.clone()).unwrap(),
        &owner,
        100,
    );
    let new = sign(
        EventBuilder::git_repository_announcement(GitRepositoryAnnouncement {
            maintainers: vec![keys(2).public_key(), keys(3).public_key()],
            ..a
        })
        .unwrap(),
        &owner,
        200,
    );
    let forged = sign(
        EventBuilder::git_repository_announcement(GitRepositoryAnnouncement {
            id: "jobctl".into(),
            name: None,
            description: None,
            web: vec![],
            clone: vec![],
            relays: vec![],
            euc: None,
            maintainers: vec![keys(9).public_key()],
        })
        .unwrap(),
        &keys(9),
        300,
    );
    let got = newest_announcement(&[old.clone(), new, forged], &repo()).unwrap();
    assert_eq!(got.at.as_secs(), 200);
    assert_eq!(got.repo.relays, vec![relay("wss://relay.example.com")]);
    assert_eq!(
        got.trusted(),
        vec![
            owner.public_key(),
            keys(2).public_key(),
            keys(3).public_key()
        ]
    );
    let first = Announcement::from_event(&old).unwrap();
    assert_eq!(
        first.maintainers,
        vec![keys(2).public_key()],
        "the owner is not listed twice"
    );
    assert_eq!(
        first.clone,
        vec!["https://git.example/jobctl.git".to_string()]
    );
    assert!(Announcement::from_event(&sign(EventBuilder::text_note("x"), &owner, 1)).is_none());
}

pub(super) fn a_run() -> WorkflowRun {
    WorkflowRun {
        repo: RepoRef {
            relays: vec![],
            ..repo()
        },
        workflow: ".github/workflows/ci.yml".into(),
        triggered_by: keys(1).public_key(),
        publisher: Some(keys(7).public_key()),
        trigger: "manual".into(),
        branch: "main".into(),
        commit: "0123456789abcdef0123456789abcdef01234567".into(),
    }
}

#[test]
fn a_run_has_the_spec_tags_in_order_and_round_trips() {
    let run = a_run();
    let e = sign(run.to_builder(), &keys(1), 1000);
    assert_eq!(e.kind, Kind::Custom(5401));
    assert_eq!(e.content, "");
    let names: Vec<String> = tags(&e).iter().map(|t| t[0].clone()).collect();
    assert_eq!(
        names,
        [
            "a",
            "workflow",
            "triggered-by",
            "publisher",
            "trigger",
            "branch",
            "commit",
            "t"
        ]
    );
    assert_eq!(tags(&e)[0][1], repo().coordinate());
    assert_eq!(tags(&e)[7], vec!["t".to_string(), "hive-ci".into()]);
    assert_eq!(WorkflowRun::from_event(&e).unwrap(), run);
    let parsed = RunEvent::from_event(&e).unwrap();
    assert!(parsed.may_report(&keys(7).public_key()));
    assert!(!parsed.may_report(&keys(1).public_key()));
}

#[test]
fn bad_runs_are_refused_with_the_reason() {
    let t = |k: &str, v: &str| Tag::custom(TagKind::Custom(k.to_string().into()), [v.to_string()]);
    let hex = keys(1).public_key().to_hex();
    let build = |tags: Vec<Tag>| {
        sign(
            EventBuilder::new(Kind::Custom(5401), "").tags(tags),
            &keys(1),
            5,
        )
    };
    let a = t("a", &format!("30617:{hex}:jobctl"));
    assert_eq!(
        WorkflowRun::from_event(&build(vec![t("workflow", "ci.yml")])),
        Err(EventError::Missing("a"))
    );
    assert_eq!(
        WorkflowRun::from_event(&build(vec![a.clone()])),
        Err(EventError::Missing("workflow"))
    );
    assert!(matches!(
        WorkflowRun::from_event(&build(vec![t("a", "30023:x:y"), t("workflow", "w")])),
        Err(EventError::Invalid("a", _))
    ));
    assert!(matches!(
        WorkflowRun::from_event(&build(vec![
            a.clone(),
            t("workflow", "w"),
            t("publisher", "zz")
        ])),
        Err(EventError::Invalid("publisher", _))
    ));
    let minimal = WorkflowRun::from_event(&build(vec![a, t("workflow", "w")])).unwrap();
    assert_eq!(
        minimal.triggered_by,
        keys(1).public_key(),
        "defaults to the signer"
    );
    assert_eq!(
        (minimal.trigger.as_str(), minimal.publisher),
        ("manual", None)
    );
    let note = sign(EventBuilder::text_note("x"), &keys(1), 5);
    assert_eq!(
        WorkflowRun::from_event(&note),
        Err(EventError::WrongKind(1, 5401))
    );
}

#[test]
fn a_result_has_the_spec_tags_and_round_trips() {
    let run_id = EventId::all_zeros();
    let r = WorkflowResult {
        run: run_id,
        status: "success".into(),
        exit_code: Some(0),
        duration: Some(42.0),
        log_url: Some(format!("http://b.example/{}", "a".repeat(64))),
    };
    let e = sign(r.to_builder(), &keys(7), 2000);
    assert_eq!(e.kind, Kind::Custom(5402));
    assert_eq!(
        tags(&e),
        vec![
            vec!["e".to_string(), run_id.to_hex()],
            vec!["status".into(), "success".into()],
            vec!["exit_code".into(), "0".into()],
            vec!["duration".into(), "42".into()],
            vec![
                "log_url".into(),
                format!("http://b.example/{}", "a".repeat(64))
            ],
        ]
    );
    assert_eq!(WorkflowResult::from_event(&e).unwrap(), r);
    assert_eq!(r.state(), JobState::Success);
    let fail = WorkflowResult {
        status: "failure".into(),
        exit_code: Some(2),
        duration: Some(1.5),
        log_url: None,
        run: run_id,
    };
    let back = WorkflowResult::from_event(&sign(fail.to_builder(), &keys(7), 1)).unwrap();
    assert_eq!((back.state(), back.duration), (JobState::Failed, Some(1.5)));
    let odd = WorkflowResult {
        status: "whatever".into(),
        exit_code: Some(3),
        ..fail.clone()
    };
    assert_eq!(
        odd.state(),
        JobState::Failed,
        "unknown words fall back to the exit code"
    );
    assert_eq!(status_for_exit(0), "success");
    assert_eq!(status_for_exit(1), "failure");
    let no_e = sign(
        EventBuilder::new(Kind::Custom(5402), "")
            .tags([Tag::custom(TagKind::Custom("status".into()), ["success"])]),
        &keys(7),
        1,
    );
    assert_eq!(
        WorkflowResult::from_event(&no_e),
        Err(EventError::Missing("e"))
    );
}
