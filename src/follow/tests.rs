//! Unit tests of the live-watch plumbing.

use super::*;
use std::borrow::Cow;

#[test]
fn live_events_come_as_events_or_as_relay_messages() {
    let ev = EventBuilder::text_note("x")
        .sign_with_keys(&Keys::generate())
        .expect("sign");
    let relay_url = RelayUrl::parse("ws://127.0.0.1:1").expect("url");
    let sub = SubscriptionId::new("s");
    let first = RelayPoolNotification::Event {
        relay_url: relay_url.clone(),
        subscription_id: sub.clone(),
        event: Box::new(ev.clone()),
    };
    assert_eq!(live_event(first).map(|e| e.id), Some(ev.id));
    // Seen before on another subscription: only the relay's message.
    let again = RelayPoolNotification::Message {
        relay_url: relay_url.clone(),
        message: RelayMessage::Event {
            subscription_id: Cow::Owned(sub.clone()),
            event: Cow::Owned(ev.clone()),
        },
    };
    assert_eq!(live_event(again).map(|e| e.id), Some(ev.id));
    let eose = RelayPoolNotification::Message {
        relay_url,
        message: RelayMessage::EndOfStoredEvents(Cow::Owned(sub)),
    };
    assert!(live_event(eose).is_none());
}
