//! The HTTP head reader (host/src/edge/handshake.rs): any bytes, read whole or in two
//! reads as a socket delivers them, parse the same way without a panic; a parsed
//! head is well formed; and an upgrade the host accepts is one RFC 6455 §4.2.1
//! allows.
#![no_main]

use base64::{engine::general_purpose::STANDARD, Engine};
use libfuzzer_sys::fuzz_target;
use mswoole::edge::handshake::{check_upgrade, parse_head, Head, Parsed};

/// The parts of a head that decide what the host does, comparable.
fn shape(head: &Head) -> (String, u8, String, String, Vec<(String, String)>) {
    (
        head.method.clone(),
        head.version,
        head.path.clone(),
        head.query.clone(),
        head.headers.clone(),
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let whole = parse_head(bytes);
    if let Parsed::Complete(head, used) = &whole {
        assert!(*used <= bytes.len());
        assert!(!head.method.is_empty());
        assert!(!head.path.contains('?'), "the query is split off");
        assert!(head.headers.len() <= 64);
        for (name, _) in &head.headers {
            assert_eq!(
                name,
                &name.to_ascii_lowercase(),
                "header names are lower-cased"
            );
        }
        // The head alone parses to the same head (what follows is the client's first frame).
        match parse_head(&bytes[..*used]) {
            Parsed::Complete(again, again_used) => {
                assert_eq!(again_used, *used);
                assert_eq!(shape(&again), shape(head));
            }
            other => panic!("the head alone did not parse: {other:?}"),
        }
        // Any query parameter reads without a panic.
        for pair in head.query.split('&') {
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            let _ = head.query_param(name);
        }
        let _ = head.is_upgrade();
        if check_upgrade(head).is_ok() {
            assert_eq!(head.method, "GET");
            assert!(head.version >= 1);
            assert_eq!(
                head.header("sec-websocket-version").map(str::trim),
                Some("13")
            );
            let key = head
                .header("sec-websocket-key")
                .map(str::trim)
                .unwrap_or("");
            assert_eq!(STANDARD.decode(key).map(|k| k.len()).ok(), Some(16));
        }
    }
    // Read in two parts: the first part is either incomplete, or already the same head.
    let cut = usize::from(split) * bytes.len() / 255;
    match (parse_head(&bytes[..cut]), &whole) {
        (Parsed::Partial, _) | (Parsed::Malformed, Parsed::Malformed) => {}
        (Parsed::Complete(first, used), Parsed::Complete(head, whole_used)) => {
            assert_eq!(used, *whole_used);
            assert_eq!(shape(&first), shape(head));
        }
        (first, whole) => panic!("a prefix parsed as {first:?}, the whole as {whole:?}"),
    }
});
