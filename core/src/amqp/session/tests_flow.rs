//! Byte-vector tests of server-sent `channel.flow`: the client answers
//! flow-ok, reports the pause, and refuses publishes on that channel (with
//! nothing written) until the server resumes it.

use std::vec::Vec;

use super::testkit::*;
use super::*;
use crate::amqp::methods::Channel;
use crate::amqp::Properties;

fn take(s: &mut TestSession) -> Vec<u8> {
    let out = s.transmit().to_vec();
    s.transmitted(out.len());
    out
}

#[test]
fn a_server_flow_pause_answers_flow_ok_and_holds_publishes_until_resumed() {
    let mut s = open_session(131_072, 0);
    let ch2 = s.open_channel().unwrap();
    feed(&mut s, &method(ch2, Channel::OpenOk), t(2));
    take(&mut s);
    let (_, ev) = feed(&mut s, &method(1, Channel::Flow { active: false }), t(3));
    assert_eq!(
        ev,
        [Event::Flow {
            channel: 1,
            active: false
        }]
    );
    assert_eq!(take(&mut s), method(1, Channel::FlowOk { active: false }));
    let p = Properties::default();
    assert_eq!(
        s.publish(1, "", "q", PublishFlags::default(), &p, b"x"),
        Err(Error::FlowPaused(1))
    );
    assert!(s.transmit().is_empty(), "nothing written while paused");
    assert!(!Error::FlowPaused(1).is_fatal());
    // Only that channel is paused.
    s.publish(ch2, "", "q", PublishFlags::default(), &p, b"y")
        .unwrap();
    assert!(!take(&mut s).is_empty());
    let (_, ev) = feed(&mut s, &method(1, Channel::Flow { active: true }), t(4));
    assert_eq!(
        ev,
        [Event::Flow {
            channel: 1,
            active: true
        }]
    );
    assert_eq!(take(&mut s), method(1, Channel::FlowOk { active: true }));
    s.publish(1, "", "q", PublishFlags::default(), &p, b"x")
        .unwrap();
    assert!(!s.transmit().is_empty());
}
