//! What a failed read from a client's WebSocket means, and the close code it gets.
//!
//! RFC 6455 §7.1.7 says an endpoint that finds the peer broke the framing rules must
//! _Fail the WebSocket Connection_, and §7.4.1 gives 1002 for a protocol error, 1007
//! for text that is not UTF-8 and 1009 for a message too big to process. tungstenite
//! detects every one of those and reports it as an error from the read; this module is
//! the one place that turns its errors into the close a client gets (README, "Bad
//! input"). The match over tungstenite's error types is exhaustive on purpose: a new
//! kind of error in a tungstenite upgrade stops the build here until someone decides
//! what it means for the client.

use tokio_tungstenite::tungstenite::{
    error::{CapacityError, ProtocolError},
    Error as WsError,
};

pub use crate::engine::end::ReadFailure;

/// The length field of a frame is 64 bits, but RFC 6455 §5.2 says its most significant
/// bit must be 0. tungstenite compares the length with the size limit before anything
/// else and reports such a frame as too long, with the length as `size`; a length that
/// no 63-bit field can hold is a framing error, not a big message.
const MAX_LEGAL_LENGTH: u64 = i64::MAX as u64;

/// Classifies an error returned by reading the client's WebSocket.
pub fn classify(error: &WsError) -> ReadFailure {
    match error {
        WsError::Protocol(protocol) => classify_protocol(protocol),
        WsError::Utf8(_) => ReadFailure::InvalidUtf8,
        WsError::Capacity(CapacityError::MessageTooLong { size, .. }) => {
            if *size as u64 > MAX_LEGAL_LENGTH {
                ReadFailure::Protocol
            } else {
                ReadFailure::TooBig
            }
        }
        // Only a handshake reads headers, and the host reads those itself.
        WsError::Capacity(CapacityError::TooManyHeaders) => ReadFailure::Protocol,
        WsError::AttackAttempt => ReadFailure::Protocol,
        WsError::ConnectionClosed | WsError::AlreadyClosed | WsError::Io(_) => ReadFailure::Gone,
        // Errors of writing, of TLS, of a client's URL or of an HTTP response: none comes
        // from reading a server-side connection, and nothing can be said to such a peer.
        WsError::Tls(_)
        | WsError::WriteBufferFull(_)
        | WsError::Url(_)
        | WsError::Http(_)
        | WsError::HttpFormat(_) => ReadFailure::Gone,
    }
}

fn classify_protocol(error: &ProtocolError) -> ReadFailure {
    match error {
        // The peer went away without a close frame, or sent after its own close (which
        // was already answered): there is no one left to tell.
        ProtocolError::ResetWithoutClosingHandshake | ProtocolError::ReceivedAfterClosing => {
            ReadFailure::Gone
        }
        // Our own write after a close; not the client's fault, and it cannot be told.
        ProtocolError::SendAfterClosing => ReadFailure::Gone,
        // Framing: RFC 6455 §5.2–§5.5.
        ProtocolError::NonZeroReservedBits
        | ProtocolError::UnmaskedFrameFromClient
        | ProtocolError::MaskedFrameFromServer
        | ProtocolError::FragmentedControlFrame
        | ProtocolError::ControlFrameTooBig
        | ProtocolError::UnknownControlFrameType(_)
        | ProtocolError::UnknownDataFrameType(_)
        | ProtocolError::UnexpectedContinueFrame
        | ProtocolError::ExpectedFragment(_)
        | ProtocolError::InvalidOpcode(_)
        | ProtocolError::InvalidCloseSequence => ReadFailure::Protocol,
        // Handshake errors: the host reads the handshake itself (handshake.rs), so these
        // cannot come from a frame; were they to, the peer broke the protocol.
        ProtocolError::WrongHttpMethod
        | ProtocolError::WrongHttpVersion
        | ProtocolError::MissingConnectionUpgradeHeader
        | ProtocolError::MissingUpgradeWebSocketHeader
        | ProtocolError::MissingSecWebSocketVersionHeader
        | ProtocolError::MissingSecWebSocketKey
        | ProtocolError::InvalidSecWebSocketKey
        | ProtocolError::SecWebSocketAcceptKeyMismatch
        | ProtocolError::SecWebSocketSubProtocolError(_)
        | ProtocolError::JunkAfterRequest
        | ProtocolError::CustomResponseSuccessful
        | ProtocolError::InvalidHeader(_)
        | ProtocolError::HandshakeIncomplete
        | ProtocolError::HttparseError(_) => ReadFailure::Protocol,
    }
}

#[cfg(test)]
mod tests {
    //! Each case feeds raw client bytes to a server-side tungstenite connection (no
    //! socket: an in-memory stream) and checks what its first error is classified as.

    use std::io::{self, Cursor, Read, Write};

    use tokio_tungstenite::tungstenite::{
        protocol::{Role, WebSocketConfig},
        Message, WebSocket,
    };

    use super::*;

    /// The client's bytes to read; whatever the server writes is discarded.
    struct Wire(Cursor<Vec<u8>>);

    impl Read for Wire {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }

    impl Write for Wire {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// One frame as a client would write it: `first` is FIN, RSV and opcode.
    fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
        let mut bytes = vec![first];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            n @ 0..=125 => bytes.push(mask_bit | n as u8),
            n @ 126..=65535 => {
                bytes.push(mask_bit | 126);
                bytes.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                bytes.push(mask_bit | 127);
                bytes.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            bytes.extend_from_slice(&MASK);
            bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
        } else {
            bytes.extend_from_slice(payload);
        }
        bytes
    }

    /// The first error reading `bytes` gives (with a 1 KiB limit), or `None` if every
    /// frame up to a close frame was accepted.
    fn first_error(bytes: Vec<u8>) -> Option<WsError> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(1024))
            .max_frame_size(Some(1024));
        let mut socket =
            WebSocket::from_raw_socket(Wire(Cursor::new(bytes)), Role::Server, Some(config));
        loop {
            match socket.read() {
                Ok(Message::Close(_)) => return None,
                Ok(_) => continue,
                Err(error) => return Some(error),
            }
        }
    }

    /// What reading `bytes` ends in: the first error's class, or `None` if every frame
    /// was accepted (the bytes running out is the client going away).
    fn outcome(bytes: Vec<u8>) -> Option<ReadFailure> {
        first_error(bytes)
            .map(|error| classify(&error))
            .filter(|failure| *failure != ReadFailure::Gone)
    }

    #[test]
    fn what_tungstenite_reports_for_each_case_of_the_probe() {
        use tokio_tungstenite::tungstenite::protocol::frame::coding::Data;
        let text = |first| frame(first, b"{}", true);
        let mut top_bit = vec![0x81, 0x80 | 127];
        top_bit.extend_from_slice(&(1u64 << 63).to_be_bytes());
        top_bit.extend_from_slice(&MASK);
        let protocol = |error| Some(WsError::Protocol(error));
        let cases: Vec<(&str, Vec<u8>, Option<WsError>)> = vec![
            (
                "unmasked",
                frame(0x81, b"{}", false),
                protocol(ProtocolError::UnmaskedFrameFromClient),
            ),
            (
                "RSV1",
                text(0xC1),
                protocol(ProtocolError::NonZeroReservedBits),
            ),
            // Reserved opcodes fail in the header parser, before the frame is read.
            (
                "opcode 0x3",
                text(0x83),
                protocol(ProtocolError::InvalidOpcode(3)),
            ),
            (
                "opcode 0xB",
                text(0x8B),
                protocol(ProtocolError::InvalidOpcode(11)),
            ),
            (
                "fragmented ping",
                frame(0x09, b"x", true),
                protocol(ProtocolError::FragmentedControlFrame),
            ),
            (
                "continuation without a start",
                text(0x80),
                protocol(ProtocolError::UnexpectedContinueFrame),
            ),
            (
                "text inside a fragmented message",
                [frame(0x01, b"{", true), text(0x81)].concat(),
                protocol(ProtocolError::ExpectedFragment(Data::Text)),
            ),
            (
                "126-byte ping",
                frame(0x89, &[b'p'; 126], true),
                protocol(ProtocolError::ControlFrameTooBig),
            ),
            (
                "1-byte close",
                frame(0x88, &[3], true),
                protocol(ProtocolError::InvalidCloseSequence),
            ),
            // "GET " reads as a first byte 0x47: RSV1 and opcode 7.
            (
                "an HTTP request after the upgrade",
                b"GET / HTTP/1.1\r\n\r\n".to_vec(),
                protocol(ProtocolError::InvalidOpcode(7)),
            ),
            (
                "half a frame, then the end",
                text(0x81)[..4].to_vec(),
                protocol(ProtocolError::ResetWithoutClosingHandshake),
            ),
            // A bad close code is no error: tungstenite answers 1002 itself.
            (
                "close code 1005",
                frame(0x88, &1005u16.to_be_bytes(), true),
                None,
            ),
        ];
        for (name, bytes, expected) in cases {
            let got = first_error(bytes);
            assert_eq!(format!("{got:?}"), format!("{expected:?}"), "{name}");
        }
        // The top-bit length: a capacity error whose size no 63-bit length can have.
        match first_error(top_bit) {
            Some(WsError::Capacity(CapacityError::MessageTooLong { size, max_size })) => {
                assert_eq!((size as u64, max_size), (1 << 63, 1024));
            }
            other => panic!("top-bit length: {other:?}"),
        }
        assert!(matches!(
            first_error(frame(0x81, b"\xff", true)),
            Some(WsError::Utf8(_))
        ));
    }

    #[test]
    fn framing_errors_are_1002() {
        let text = |first| frame(first, b"{}", true);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("unmasked client frame", frame(0x81, b"{}", false)),
            ("RSV1", text(0x81 | 0x40)),
            ("RSV2+RSV3", text(0x81 | 0x30)),
            ("reserved data opcode 0x3", text(0x83)),
            ("reserved control opcode 0xB", text(0x8B)),
            ("fragmented ping", frame(0x09, b"x", true)),
            ("continuation without a start", text(0x80)),
            (
                "new text frame inside a fragmented message",
                [frame(0x01, b"{", true), text(0x81)].concat(),
            ),
            (
                "new binary frame inside a fragmented message",
                [frame(0x01, b"{", true), frame(0x82, b"x", true)].concat(),
            ),
            ("126-byte ping", frame(0x89, &[b'p'; 126], true)),
            ("1-byte close payload", frame(0x88, &[3], true)),
            ("unmasked close", frame(0x88, &1000u16.to_be_bytes(), false)),
            (
                "an HTTP request after the upgrade",
                b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            ),
        ];
        for (name, bytes) in cases {
            assert_eq!(outcome(bytes), Some(ReadFailure::Protocol), "{name}");
        }
    }

    #[test]
    fn a_64_bit_length_with_the_top_bit_set_is_1002_not_1009() {
        let mut bytes = vec![0x81, 0x80 | 127];
        bytes.extend_from_slice(&(1u64 << 63).to_be_bytes());
        bytes.extend_from_slice(&MASK);
        assert_eq!(outcome(bytes), Some(ReadFailure::Protocol));
        // The largest legal length is only too big.
        let mut bytes = vec![0x81, 0x80 | 127];
        bytes.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
        bytes.extend_from_slice(&MASK);
        assert_eq!(outcome(bytes), Some(ReadFailure::TooBig));
    }

    #[test]
    fn bad_utf8_is_1007_and_size_is_1009() {
        assert_eq!(
            outcome(frame(0x81, b"\xce\xba\xe1\xbd", true)),
            Some(ReadFailure::InvalidUtf8)
        );
        // Found in the first fragment, before the message ends.
        assert_eq!(
            outcome(frame(0x01, b"ok \xff", true)),
            Some(ReadFailure::InvalidUtf8)
        );
        // A close reason that is not UTF-8.
        let mut close = 1000u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"\xff");
        assert_eq!(
            outcome(frame(0x88, &close, true)),
            Some(ReadFailure::InvalidUtf8)
        );
        assert_eq!(
            outcome(frame(0x81, &[b' '; 1025], true)),
            Some(ReadFailure::TooBig)
        );
        let halves = [
            frame(0x01, &[b' '; 600], true),
            frame(0x80, &[b' '; 600], true),
        ];
        assert_eq!(outcome(halves.concat()), Some(ReadFailure::TooBig));
    }

    #[test]
    fn valid_frames_and_an_early_end_are_not_failures() {
        let fragments = [
            frame(0x01, b"{\"a\":", true),
            frame(0x89, b"ping", true),
            frame(0x80, b"1}", true),
        ];
        assert_eq!(outcome(fragments.concat()), None);
        // Half a frame, then nothing: the client went away.
        let mut cut = frame(0x81, b"{\"a\":1}", true);
        cut.truncate(5);
        assert_eq!(outcome(cut), None);
        assert_eq!(outcome(frame(0x88, &1000u16.to_be_bytes(), true)), None);
    }
}
