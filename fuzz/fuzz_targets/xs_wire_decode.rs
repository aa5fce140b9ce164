//! Fuzz the xenstore wire decoder and every reply/request parser with
//! arbitrary bytes, delivered to the decoder in arbitrary pieces.
//!
//! The first byte chooses where to split the input; each decoded message is
//! handed to the request decoder and to all reply parsers. Nothing may
//! panic; oversize headers must be refused.
#![no_main]

use vusb_xenstore::wire::{self, Decoder, Message, MsgType, Request, reply};

fn parse_all(msg: &Message) {
    let _ = Request::decode(msg);
    let p = &msg.payload;
    let op = msg.msg_type().unwrap_or(MsgType::Read);
    let _ = reply::parse_error(op, p);
    let _ = reply::parse_ok(op, p);
    let _ = reply::parse_list(op, p);
    let _ = reply::parse_perms(op, p);
    let _ = reply::parse_string(op, p);
    let _ = reply::parse_tx_id(op, p);
    let _ = reply::parse_bool(op, p);
    let _ = reply::parse_watch_event(p);
    if let Ok(part) = reply::parse_directory_part(p) {
        assert!(part.chunk_len <= p.len());
    }
    // Whatever decoded must re-encode to the same bytes.
    let again = msg.encode();
    let mut d = Decoder::new();
    d.push(&again);
    match d.next_message() {
        Ok(Some(m)) => assert_eq!(&m, msg),
        other => panic!("re-decode failed: {other:?}"),
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    // Split points derived from the first byte: a step size for pieces.
    let step = usize::from(split).max(1);
    let mut d = Decoder::new();
    for piece in rest.chunks(step) {
        d.push(piece);
        loop {
            match d.next_message() {
                Ok(Some(msg)) => {
                    assert!(msg.payload.len() <= wire::PAYLOAD_MAX);
                    parse_all(&msg);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    // Also feed the raw input to the parsers and the path check.
    let _ = reply::parse_directory_part(rest);
    if let Ok(s) = std::str::from_utf8(rest) {
        let _ = wire::check_path(s, wire::PathRule::NODE.with_special());
    }
    let _ = wire::reply::directory_part_payload("1", rest, usize::from(split));
});
