//! Any bytes, in any feeds, through the HTTP/1.1 framer of `replay: http1`: never a panic,
//! offsets that make sense, and the same results (replay point, answered and settled
//! offsets, digest spans joined where they touch) whether each feed comes whole or cut
//! anywhere. `cargo fuzz run http1`.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tandem_engine::http1::{Exclude, Http1, Methods, Replay};

/// Whole messages and fragments, so that valid exchanges (and near misses) are a few
/// pieces away.
const WORDS: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"HEAD /x HTTP/1.1\r\n\r\n",
    b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\nT: 1\r\n\r\n",
    b"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
    b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
    b"CONNECT h:1 HTTP/1.1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nDate: x\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nServer: s\r\nTransfer-Encoding: gzip;q=\"a,b\", chunked\r\n\r\n\
      5;e=\"x\"\r\nhello\r\n0\r\nDate: t\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nDATE: y\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nsErVeR-x: 1\r\n\r\nto the end",
    b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    b"Content-Length: ",
    b"Transfer-Encoding: chunked\r\n",
    b"Date: Mon\r\n",
    b"Server",
    b"\r\n",
    b"0\r\n\r\n",
    b"12",
    b":",
];

#[derive(Arbitrary, Debug)]
enum Piece {
    Word(u8),
    Bytes(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Client(Vec<Piece>),
    Server(Vec<Piece>),
    Fin,
}

#[derive(Arbitrary, Debug)]
struct Input {
    methods: Option<Vec<String>>,
    exclude: Option<Vec<String>>,
    ops: Vec<Op>,
    /// Feed lengths for the cut run (1 to 32 bytes), cycled (none: a byte at a time).
    cuts: Vec<u8>,
}

fn bytes(pieces: &[Piece]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces {
        match p {
            Piece::Word(k) => out.extend_from_slice(WORDS[usize::from(*k) % WORDS.len()]),
            Piece::Bytes(b) => out.extend_from_slice(b),
        }
    }
    out
}

type Spans = Vec<(u64, Vec<u8>)>;

/// What is seen after each op: replay point, answered client, settled server, both ends,
/// and the spans so far.
type Seen = (Replay, u64, u64, u64, u64, Spans);

/// Feeds `ops`, each whole (`cuts` None) or cut.
fn run(
    ops: &[(u8, Vec<u8>)],
    methods: &Methods,
    exclude: &Exclude,
    cuts: Option<&[u8]>,
) -> Vec<Seen> {
    let mut h = Http1::new();
    let mut spans: Spans = Vec::new();
    let mut seen = Vec::new();
    let mut k = 0;
    for (side, b) in ops {
        let mut rest = &b[..];
        while !rest.is_empty() {
            let n = match cuts {
                None => rest.len(),
                Some([]) => 1,
                Some(c) => {
                    k += 1;
                    usize::from(c[k % c.len()] % 32) + 1
                }
            };
            let (now, r) = rest.split_at(n.min(rest.len()));
            rest = r;
            if *side == 0 {
                h.client(now, methods);
            } else {
                h.server(now, exclude, &mut |at, s: &[u8]| {
                    assert!(!s.is_empty());
                    match spans.last_mut() {
                        Some((o, b)) if *o + b.len() as u64 == at => b.extend_from_slice(s),
                        Some((o, b)) => {
                            assert!(*o + (b.len() as u64) < at, "spans in order");
                            spans.push((at, s.to_vec()));
                        }
                        None => spans.push((at, s.to_vec())),
                    }
                });
            }
        }
        if *side == 2 {
            h.server_fin();
        }
        seen.push((
            h.replay_point(),
            h.answered_client(),
            h.settled(),
            h.client_end(),
            h.server_end(),
            spans.clone(),
        ));
    }
    seen
}

fuzz_target!(|input: Input| {
    let methods = input
        .methods
        .map_or_else(|| Ok(Methods::default()), Methods::new)
        .unwrap_or_default();
    let exclude = input
        .exclude
        .map_or_else(|| Ok(Exclude::default()), Exclude::new)
        .unwrap_or_default();
    let ops: Vec<(u8, Vec<u8>)> = input
        .ops
        .iter()
        .map(|op| match op {
            Op::Client(p) => (0, bytes(p)),
            Op::Server(p) => (1, bytes(p)),
            Op::Fin => (2, Vec::new()),
        })
        .collect();
    let whole = run(&ops, &methods, &exclude, None);
    let cut = run(&ops, &methods, &exclude, Some(&input.cuts));
    assert_eq!(whole, cut, "the cuts changed the results");

    let (mut answered, mut settled, mut from_server) = (0, 0, 0);
    for (replay, a, s, client_end, server_end, spans) in &whole {
        assert!(answered <= *a && *a <= *client_end);
        assert!(settled <= *s && *s <= *server_end);
        (answered, settled) = (*a, *s);
        if let Some((o, b)) = spans.last() {
            assert!(o + b.len() as u64 <= *s, "nothing past the settled offset");
        }
        match *replay {
            Replay::Idle { client, server } => {
                assert_eq!((client, server), (*client_end, *server_end));
            }
            Replay::From { client, server } => {
                assert_eq!(client, *a);
                assert!(from_server <= server && server <= *server_end);
                from_server = server;
            }
            Replay::Unsafe(_) => {}
        }
    }
});
