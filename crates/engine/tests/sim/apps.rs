//! The applications: a request/response client, the deterministic server every replica
//! runs, and the reference model of what one healthy server sends.
//!
//! A request is `REQ <id> <len> <fill>\n` followed by `<fill>` filler bytes; the answer is
//! `<len>` bytes of a stream seeded by a hash of the whole request, so the reference
//! computes exactly what any healthy replica sends.

use smoltcp::socket::tcp::{Socket, State};

/// FNV-1a, 64 bits.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The answer to `request` (its header line and filler), `len` bytes.
pub fn response(request: &[u8], len: usize) -> Vec<u8> {
    let mut state = fnv1a(request);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The answer of a replica that is not deterministic (a "liar"): `response` with the last
/// byte of each answer changed, as a server that writes its own name or clock there.
pub fn liar_response(request: &[u8], len: usize) -> Vec<u8> {
    let mut out = response(request, len);
    if let Some(b) = out.last_mut() {
        *b ^= 0x5a;
    }
    out
}

/// One request of a run.
#[derive(Clone, Debug)]
pub struct Request {
    pub len: usize,
    pub fill: Vec<u8>,
}

/// The request bytes on the wire.
pub fn encode(id: usize, r: &Request) -> Vec<u8> {
    let mut v = format!("REQ {id} {} {}\n", r.len, r.fill.len()).into_bytes();
    v.extend_from_slice(&r.fill);
    v
}

/// The client: sends the requests with at most `depth` outstanding, reads the answers,
/// closes when it has them all.
pub struct ClientApp {
    pub stream: Vec<u8>,
    pub req_ends: Vec<usize>,
    pub expected: Vec<u8>,
    pub resp_ends: Vec<usize>,
    pub depth: usize,
    /// Bytes handed to the socket.
    pub sent: usize,
    pub received: Vec<u8>,
    /// (time, bytes received so far) each time it grew.
    pub arrivals: Vec<(u64, usize)>,
    pub close_called: bool,
    pub error: Option<String>,
    /// What a liar replica sends for the same requests ([`liar_response`]): the client may
    /// read that instead, from the first byte, but never a mix of the two.
    pub alternative: Option<Vec<u8>>,
}

impl ClientApp {
    pub fn new(requests: &[Request], depth: usize) -> ClientApp {
        let (mut stream, mut req_ends) = (Vec::new(), Vec::new());
        let (mut expected, mut resp_ends) = (Vec::new(), Vec::new());
        for (id, r) in requests.iter().enumerate() {
            let wire = encode(id, r);
            expected.extend_from_slice(&response(&wire, r.len));
            resp_ends.push(expected.len());
            stream.extend_from_slice(&wire);
            req_ends.push(stream.len());
        }
        ClientApp {
            stream,
            req_ends,
            expected,
            resp_ends,
            depth,
            sent: 0,
            received: Vec::new(),
            arrivals: Vec::new(),
            close_called: false,
            error: None,
            alternative: None,
        }
    }

    /// The same, with a liar replica in the pool: its answers are an alternative.
    pub fn with_liar(requests: &[Request], depth: usize) -> ClientApp {
        let mut app = ClientApp::new(requests, depth);
        let mut alt = Vec::new();
        for (id, r) in requests.iter().enumerate() {
            alt.extend_from_slice(&liar_response(&encode(id, r), r.len));
        }
        app.alternative = Some(alt);
        app
    }

    /// Everything a healthy server sends has arrived.
    pub fn complete(&self) -> bool {
        self.received.len() == self.expected.len()
    }

    /// Bytes the client's TCP has seen acknowledged.
    pub fn acked(&self, sock: &Socket) -> usize {
        self.sent - sock.send_queue()
    }

    /// Reads and writes what it can; true when it changed anything.
    pub fn step(&mut self, now: u64, sock: &mut Socket) -> bool {
        let mut busy = false;
        let mut buf = [0u8; 8192];
        while sock.can_recv() {
            let n = match sock.recv_slice(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            busy = true;
            let at = self.received.len();
            let want = self.expected.get(at..at + n);
            if want != Some(&buf[..n]) {
                // The liar's stream from the first byte is one stream too: what was read
                // so far must be its prefix as well (else the two were mixed).
                if let Some(alt) = self.alternative.take() {
                    if alt.get(..at) == Some(&self.received[..])
                        && alt.get(at..at + n) == Some(&buf[..n])
                    {
                        self.expected = alt;
                    }
                }
            }
            let want = self.expected.get(at..at + n);
            if want != Some(&buf[..n]) && self.error.is_none() {
                let diverge = (0..n)
                    .find(|&i| self.expected.get(at + i) != Some(&buf[i]))
                    .map_or(at, |i| at + i);
                self.error = Some(format!(
                    "client stream differs from the reference at byte {diverge} (got {n} bytes at \
                     offset {at}; reference has {} bytes)",
                    self.expected.len()
                ));
            }
            self.received.extend_from_slice(&buf[..n]);
            self.arrivals.push((now, self.received.len()));
        }
        let completed = self
            .resp_ends
            .partition_point(|&e| e <= self.received.len());
        let allowed = completed
            .saturating_add(self.depth)
            .min(self.req_ends.len());
        let limit = if allowed == 0 {
            0
        } else {
            self.req_ends[allowed - 1]
        };
        if sock.may_send() && self.sent < limit {
            if let Ok(n) = sock.send_slice(&self.stream[self.sent..limit]) {
                busy |= n > 0;
                self.sent += n;
            }
        }
        // Close once every byte is acknowledged, so that the FIN travels alone: smoltcp
        // ignores a FIN that rides on a segment whose data it already has (a
        // retransmission after the hole before it was filled), and then never
        // retransmits a FIN whose data was acked; Linux has neither quirk.
        if !self.close_called
            && self.complete()
            && self.sent == self.stream.len()
            && sock.send_queue() == 0
        {
            sock.close();
            self.close_called = true;
            busy = true;
        }
        busy
    }
}

/// The deterministic server of every replica.
#[derive(Default)]
pub struct ServerApp {
    /// It answers as a liar ([`liar_response`]).
    pub liar: bool,
    /// Every byte read from the connection.
    pub input: Vec<u8>,
    parsed: usize,
    pub output: Vec<u8>,
    pub written: usize,
    pub answered: usize,
    pub connected: bool,
    pub close_called: bool,
    pub error: Option<String>,
}

impl ServerApp {
    /// A server that answers as a liar when `liar`.
    pub fn liar(liar: bool) -> ServerApp {
        ServerApp {
            liar,
            ..ServerApp::default()
        }
    }

    /// Bytes its TCP has received in order (read or still queued).
    pub fn received(&self, sock: &Socket) -> usize {
        self.input.len() + sock.recv_queue()
    }

    pub fn step(&mut self, sock: &mut Socket) -> bool {
        let mut busy = false;
        if !matches!(
            sock.state(),
            State::Listen | State::Closed | State::SynReceived
        ) {
            self.connected = true;
        }
        let mut buf = [0u8; 8192];
        while sock.can_recv() {
            match sock.recv_slice(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    busy = true;
                    self.input.extend_from_slice(&buf[..n]);
                }
            }
        }
        while let Some(end) = self.next_request() {
            let req = &self.input[self.parsed..end];
            let len = parse_len(req).unwrap_or(0);
            let answer = if self.liar {
                liar_response(req, len)
            } else {
                response(req, len)
            };
            self.output.extend_from_slice(&answer);
            self.parsed = end;
            self.answered += 1;
        }
        if sock.may_send() && self.written < self.output.len() {
            if let Ok(n) = sock.send_slice(&self.output[self.written..]) {
                busy |= n > 0;
                self.written += n;
            }
        }
        if self.connected
            && !self.close_called
            && sock.state() == State::CloseWait
            && self.written == self.output.len()
            && sock.send_queue() == 0
            && self.parsed == self.input.len()
        {
            sock.close();
            self.close_called = true;
            busy = true;
        }
        busy
    }

    /// End offset of the next complete request in `input`.
    fn next_request(&mut self) -> Option<usize> {
        let rest = &self.input[self.parsed..];
        let nl = rest.iter().position(|&b| b == b'\n')?;
        let Some((_, fill)) = parse_header(&rest[..nl]) else {
            if self.error.is_none() {
                self.error = Some(format!(
                    "server got a malformed request header at input byte {}: {:?}",
                    self.parsed,
                    String::from_utf8_lossy(&rest[..nl.min(40)])
                ));
            }
            // Stop parsing; the stream is corrupt.
            self.parsed = self.input.len();
            return None;
        };
        let end = self.parsed + nl + 1 + fill;
        (end <= self.input.len()).then_some(end)
    }
}

/// (len, fill) of a header line `REQ <id> <len> <fill>`.
fn parse_header(line: &[u8]) -> Option<(usize, usize)> {
    let s = std::str::from_utf8(line).ok()?;
    let mut it = s.split(' ');
    if it.next()? != "REQ" {
        return None;
    }
    let _id: usize = it.next()?.parse().ok()?;
    let len = it.next()?.parse().ok()?;
    let fill = it.next()?.parse().ok()?;
    Some((len, fill))
}

fn parse_len(req: &[u8]) -> Option<usize> {
    let nl = req.iter().position(|&b| b == b'\n')?;
    parse_header(&req[..nl]).map(|(len, _)| len)
}
