//! The manager's command parser (host/src/manager/command.rs): any text is a command
//! or a refusal without a panic; what is not a JSON object is 400 `badRequest`; a
//! frame for clients is never larger than a client may send; `broadcast` never
//! targets the host's own keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mswoole::manager::command::{self, Answer, Command, Recipient};
use mswoole_core::registry::is_host_key;
use serde_json::Value;

/// The input: `limits.max_message_bytes` as two little-endian bytes, then the command
/// text, so that seeds are readable (`fuzz/corpus/command`).
struct Input<'a> {
    max_frame: usize,
    text: &'a [u8],
}

impl<'a> Input<'a> {
    fn read(data: &'a [u8]) -> Option<Self> {
        let (&[low, high], text) = data.split_first_chunk::<2>()?;
        Some(Input {
            max_frame: usize::from(u16::from_le_bytes([low, high])),
            text,
        })
    }
}

/// The frame is an envelope a client can read: `status`, `event`, `info`.
fn envelope(frame: &str) {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(frame) else {
        panic!("a frame for clients is not a JSON object: {frame}");
    };
    let keys: Vec<&str> = map.keys().map(String::as_str).take(3).collect();
    assert_eq!(keys, ["status", "event", "info"], "{frame}");
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::read(data) else {
        return;
    };
    let max_frame = input.max_frame;
    let is_object = matches!(
        serde_json::from_slice::<Value>(input.text),
        Ok(Value::Object(_))
    );
    let body = match command::object(input.text) {
        Ok(body) => {
            assert!(is_object);
            body
        }
        Err(refusal) => {
            assert!(!is_object);
            assert_eq!(refusal, Answer::bad_request());
            return;
        }
    };
    let method = body.get("method").and_then(Value::as_str).unwrap_or("");
    match Command::parse(method, &body, max_frame) {
        Ok(Command::Say(frame)) => {
            assert!(frame.len() <= max_frame);
            envelope(&frame);
        }
        Ok(Command::Push(recipient, frame)) => {
            assert!(frame.len() <= max_frame);
            envelope(&frame);
            match recipient {
                Recipient::Fd(id) | Recipient::Uid(id) => assert!(!id.is_empty()),
            }
        }
        Ok(Command::Broadcast(key, frame)) => {
            assert!(frame.len() <= max_frame);
            envelope(&frame);
            assert!(!key.is_empty() && !is_host_key(&key), "{key:?}");
        }
        Ok(Command::Reload | Command::Stop | Command::Status) => {
            assert!(matches!(method, "reload" | "stop" | "status"));
        }
        Err(answer) => {
            assert!(matches!(answer.http, 200 | 400), "{answer:?}");
            assert!(matches!(answer.envelope.status, 400 | 401), "{answer:?}");
            envelope(&answer.to_json());
        }
    }
});
