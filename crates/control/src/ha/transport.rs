//! The sync transport of the HA link: the active's [`Sender`] packs the workers' flow
//! records into numbered batches and resends what the peer has not acked; the standby's
//! [`Receiver`] takes them in order and acks cumulatively. Pure: the caller passes `now`
//! and moves the datagrams.
//!
//! - **Streams.** A stream starts with a [`BatchKind::BulkStart`] batch and the full
//!   table of flows after it, ending with [`BatchKind::BulkDone`]; then each record as
//!   the workers make it. Batch numbers never go back: the first is the sender's
//!   incarnation (its start time in ns), so a restarted sender's batches are all newer
//!   than its old ones and a late batch of an old stream is a duplicate.
//! - **Order.** The receiver hands records on only in the sender's order (records of one
//!   flow must not overtake each other: a late refresh would bring back a removed flow):
//!   a batch past a gap is kept (up to [`REORDER_MAX`]) until the gap fills. It acks the
//!   highest batch it has in order; a `BulkStart` it takes at any number past that.
//! - **Resends.** Go-back-N: when the oldest unacked batch was last sent `resend_ns` ago,
//!   every unacked batch goes again.
//! - **A full buffer.** At most `window` batches are unacked. A record that finds the
//!   window full is lost, and counted: the worker that made it is never blocked. The
//!   sender then loses every record until the window drains (the link is back), and
//!   starts a new stream, a bulk resync, in place of what was lost.

use std::collections::{BTreeMap, VecDeque};

use tandem_engine::sync::{
    Batch, BatchKind, BatchWriter, SyncRecord, BATCH_HEADER_LEN, RECORD_LEN,
};

/// The most records a batch may carry (a 64 KiB UDP datagram).
pub const MAX_BATCH_RECORDS: usize = (65_507 - BATCH_HEADER_LEN) / RECORD_LEN;

/// How the sender batches and resends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncSettings {
    /// Records per batch, 1 to [`MAX_BATCH_RECORDS`] (5 fill a 1500-byte datagram).
    pub batch_records: usize,
    /// The longest a record waits for its batch to fill (ns).
    pub batch_interval_ns: u64,
    /// Batches that may be unacked at once: the bound of the sender's buffer.
    pub window: usize,
    /// Unacked batches are sent again after this long (ns).
    pub resend_ns: u64,
}

impl Default for SyncSettings {
    fn default() -> SyncSettings {
        SyncSettings {
            batch_records: 5,
            batch_interval_ns: 1_000_000,
            window: 1024,
            resend_ns: 20_000_000,
        }
    }
}

/// What the sender and receiver count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportCounters {
    /// Records sent (once each; resends are counted apart).
    pub records_sent: u64,
    /// Records sent again.
    pub records_resent: u64,
    /// Records refused because the window was full (a bulk resync follows).
    pub records_lost: u64,
    /// Batches sent again.
    pub batches_resent: u64,
    /// Streams (bulk syncs) started by the sender.
    pub bulk_syncs: u64,
    /// Records taken in order by the receiver.
    pub records_received: u64,
    /// Records in an in-order batch that did not decode (skipped).
    pub records_malformed: u64,
    /// Batches already had (dropped, acked again).
    pub batches_duplicate: u64,
    /// Batches past a gap (dropped: the sender resends in order).
    pub batches_out_of_order: u64,
    /// Bulk syncs the receiver completed.
    pub bulks_received: u64,
}

/// A batch kept until it is acked.
#[derive(Debug)]
struct Unacked {
    seq: u64,
    bytes: Vec<u8>,
    records: u16,
    /// When its oldest record was offered (ns).
    oldest: u64,
    /// When it was last sent (ns), if it was.
    sent_at: Option<u64>,
}

/// The active's side of the sync (see the module docs).
#[derive(Debug)]
pub struct Sender {
    cfg: SyncSettings,
    next_seq: u64,
    /// The `BulkStart` of the current stream; `None`: no stream (no peer to sync).
    stream: Option<u64>,
    acked: u64,
    window: VecDeque<Unacked>,
    /// Index in `window` of the next batch to (re)send.
    cursor: usize,
    open: Vec<SyncRecord>,
    open_records: u16,
    open_since: u64,
    bulk_running: bool,
    overflowed: bool,
    /// A stream restarted by the sender itself (after an overflow), not yet reported.
    restarted: Option<u64>,
    /// Counters.
    pub counters: TransportCounters,
}

impl Sender {
    /// A sender whose first batch is numbered `first_seq` (its incarnation: the start
    /// time in ns, so that numbers never go back across restarts). `batch_records` and
    /// `window` are clamped to at least 1.
    pub fn new(mut cfg: SyncSettings, first_seq: u64) -> Sender {
        cfg.batch_records = cfg.batch_records.clamp(1, MAX_BATCH_RECORDS);
        cfg.window = cfg.window.max(1);
        Sender {
            cfg,
            next_seq: first_seq.max(1),
            stream: None,
            acked: 0,
            window: VecDeque::new(),
            cursor: 0,
            open: Vec::new(),
            open_records: 0,
            open_since: 0,
            bulk_running: false,
            overflowed: false,
            restarted: None,
            counters: TransportCounters::default(),
        }
    }

    /// The current stream (its `BulkStart` batch number), if one runs.
    pub fn stream(&self) -> Option<u64> {
        self.stream
    }

    /// Starts a stream: forgets what was unacked, sends `BulkStart`, and expects the
    /// caller to offer every flow's record and then call [`Sender::bulk_done`] with the
    /// number returned.
    pub fn start_stream(&mut self) -> u64 {
        self.window.clear();
        self.cursor = 0;
        self.open.clear();
        self.open_records = 0;
        self.overflowed = false;
        self.restarted = None;
        let seq = self.marker(BatchKind::BulkStart, 0);
        self.stream = Some(seq);
        self.acked = seq - 1;
        self.bulk_running = true;
        self.counters.bulk_syncs += 1;
        seq
    }

    /// Stops streaming (no peer to sync): everything unsent or unacked is dropped.
    pub fn stop(&mut self) {
        self.stream = None;
        self.window.clear();
        self.cursor = 0;
        self.open.clear();
        self.open_records = 0;
        self.bulk_running = false;
        self.overflowed = false;
        self.restarted = None;
    }

    /// A stream the sender restarted by itself after losing records: the caller runs
    /// its bulk (as after [`Sender::start_stream`]).
    pub fn take_restart(&mut self) -> Option<u64> {
        self.restarted.take()
    }

    /// Whether the bulk of the current stream is still being offered.
    pub fn bulk_running(&self) -> bool {
        self.bulk_running
    }

    /// Records that can be offered now without a loss (0 without a stream).
    pub fn room(&self) -> usize {
        if self.stream.is_none() || self.overflowed {
            return 0;
        }
        let free = self.cfg.window.saturating_sub(self.window.len());
        (free * self.cfg.batch_records).saturating_sub(usize::from(self.open_records))
    }

    /// Offers a record made at `now`. `false` when it is not sent: no stream runs (no
    /// peer to sync; nothing is lost), or the window is full (lost and counted, and a
    /// bulk resync follows once the window drains).
    pub fn offer(&mut self, now: u64, rec: &SyncRecord) -> bool {
        if self.stream.is_none() {
            return false;
        }
        if self.overflowed || (self.open_records == 0 && self.window.len() >= self.cfg.window) {
            self.overflowed = true;
            self.counters.records_lost += 1;
            return false;
        }
        if self.open_records == 0 {
            self.open.clear();
            self.open_since = now;
        }
        self.open.push(*rec);
        self.open_records += 1;
        if usize::from(self.open_records) >= self.cfg.batch_records {
            self.close_open();
        }
        true
    }

    /// The bulk of stream `stream` is complete: `BulkDone` follows its last record. A
    /// stale `stream` (one since replaced) is ignored.
    pub fn bulk_done(&mut self, stream: u64) {
        if self.stream != Some(stream) || !self.bulk_running {
            return;
        }
        self.close_open();
        self.marker(BatchKind::BulkDone, self.open_since);
        self.bulk_running = false;
    }

    /// Closes the batch being filled, so that it goes out now (a handover's final
    /// records); returns the number of the last batch of the stream so far.
    pub fn flush(&mut self) -> u64 {
        self.close_open();
        self.next_seq - 1
    }

    /// The peer has every batch up to `seq`.
    pub fn on_ack(&mut self, seq: u64) {
        let Some(stream) = self.stream else { return };
        if seq < stream || seq <= self.acked || seq >= self.next_seq {
            return;
        }
        self.acked = seq;
        while self.window.front().is_some_and(|b| b.seq <= seq) {
            self.window.pop_front();
            self.cursor = self.cursor.saturating_sub(1);
        }
        if self.overflowed && self.window.is_empty() {
            let restarted = self.start_stream();
            self.restarted = Some(restarted);
        }
    }

    /// The highest batch acked in the current stream.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// The highest batch number given out.
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Batches unacked.
    pub fn unacked(&self) -> usize {
        self.window.len()
    }

    /// How long the oldest record not yet acked has waited (ns; 0: none waits).
    pub fn lag_ns(&self, now: u64) -> u64 {
        let oldest = self
            .window
            .iter()
            .find(|b| b.records > 0)
            .map(|b| b.oldest)
            .or((self.open_records > 0).then_some(self.open_since));
        oldest.map_or(0, |t| now.saturating_sub(t))
    }

    /// Timers: a batch that waited `batch_interval` goes out unfilled; a resend round
    /// starts when the oldest unacked batch was last sent `resend_ns` ago.
    pub fn poll(&mut self, now: u64) {
        if self.open_records > 0
            && now.saturating_sub(self.open_since) >= self.cfg.batch_interval_ns
        {
            self.close_open();
        }
        if let Some(Unacked {
            sent_at: Some(at), ..
        }) = self.window.front()
        {
            if now.saturating_sub(*at) >= self.cfg.resend_ns {
                self.cursor = 0;
            }
        }
    }

    /// The next batch to send, copied into `buf`; its length. `None`: nothing to send
    /// now (or `buf` too short for it: it stays queued).
    pub fn poll_transmit(&mut self, now: u64, buf: &mut [u8]) -> Option<usize> {
        let b = self.window.get_mut(self.cursor)?;
        let out = buf.get_mut(..b.bytes.len())?;
        out.copy_from_slice(&b.bytes);
        if b.sent_at.is_some() {
            self.counters.batches_resent += 1;
            self.counters.records_resent += u64::from(b.records);
        } else {
            self.counters.records_sent += u64::from(b.records);
        }
        b.sent_at = Some(now);
        self.cursor += 1;
        Some(b.bytes.len())
    }

    fn close_open(&mut self) {
        if self.open_records == 0 {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut bytes = vec![0u8; BATCH_HEADER_LEN + self.open.len() * RECORD_LEN];
        let mut records = 0;
        let len = match BatchWriter::new(&mut bytes, BatchKind::Records, seq) {
            Ok(mut w) => {
                for rec in &self.open {
                    // A record the engine made always encodes; one that does not is
                    // dropped rather than sent half-written.
                    if w.push(rec).is_err() {
                        self.counters.records_lost += 1;
                    }
                }
                records = w.count() as u16;
                w.finish()
            }
            Err(_) => 0,
        };
        bytes.truncate(len);
        self.window.push_back(Unacked {
            seq,
            bytes,
            records,
            oldest: self.open_since,
            sent_at: None,
        });
        self.open.clear();
        self.open_records = 0;
    }

    /// Queues a batch without records of `kind`; its number.
    fn marker(&mut self, kind: BatchKind, oldest: u64) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut bytes = vec![0u8; BATCH_HEADER_LEN];
        let len = BatchWriter::new(&mut bytes, kind, seq).map_or(0, BatchWriter::finish);
        bytes.truncate(len);
        self.window.push_back(Unacked {
            seq,
            bytes,
            records: 0,
            oldest,
            sent_at: None,
        });
        seq
    }
}

/// What the receiver hands on, in the sender's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery<'a> {
    /// A flow's record, to install in the owning worker's table.
    Record(&'a SyncRecord),
    /// A full resync starts: the records that follow, up to [`Delivery::BulkDone`], are
    /// the sender's whole table.
    BulkStart,
    /// The resync is complete: a flow not refreshed since [`Delivery::BulkStart`] is no
    /// longer the sender's.
    BulkDone,
}

/// Batches past a gap that the receiver keeps until the gap fills.
pub const REORDER_MAX: usize = 256;

/// The standby's side of the sync (see the module docs).
#[derive(Debug, Default)]
pub struct Receiver {
    cum: Option<u64>,
    ready: bool,
    ack_due: bool,
    /// Batches past a gap, by number (at most [`REORDER_MAX`]).
    ahead: BTreeMap<u64, Vec<u8>>,
    /// Counters.
    pub counters: TransportCounters,
}

impl Receiver {
    /// Takes one batch of the peer's (`bytes`, read as `batch`; not an ack), handing
    /// what it carries to `deliver` in order: at once when it is the next, later when it
    /// comes past a gap (kept, up to [`REORDER_MAX`] of them).
    pub fn on_batch(
        &mut self,
        batch: &Batch<'_>,
        bytes: &[u8],
        mut deliver: impl FnMut(Delivery<'_>),
    ) {
        self.ack_due = true;
        match batch.kind {
            BatchKind::Ack => {}
            BatchKind::BulkStart if self.cum.is_none_or(|c| batch.seq > c) => {
                // A new stream: whatever was kept of the old one is void.
                self.ahead.retain(|&seq, _| seq > batch.seq);
                self.take(batch, &mut deliver);
                self.drain(&mut deliver);
            }
            _ if self.cum.is_some_and(|c| batch.seq == c.saturating_add(1)) => {
                self.take(batch, &mut deliver);
                self.drain(&mut deliver);
            }
            _ if self.cum.is_some_and(|c| batch.seq <= c) => {
                self.counters.batches_duplicate += 1;
            }
            _ => {
                self.counters.batches_out_of_order += 1;
                if self.ahead.len() < REORDER_MAX || self.ahead.contains_key(&batch.seq) {
                    self.ahead.insert(batch.seq, bytes.to_vec());
                }
            }
        }
    }

    /// Delivers the kept batches that follow on in order. (A `BulkStart` is never
    /// kept: it is taken whenever it is past what the receiver has.)
    fn drain(&mut self, deliver: &mut impl FnMut(Delivery<'_>)) {
        while let Some(entry) = self.ahead.first_entry() {
            let cum = self.cum.unwrap_or(0);
            if *entry.key() > cum.saturating_add(1) {
                return;
            }
            let next = *entry.key() == cum.saturating_add(1);
            let bytes = entry.remove();
            if next {
                if let Ok(b) = Batch::parse(&bytes) {
                    self.take(&b, deliver);
                }
            }
        }
    }

    /// Takes `batch` as the next in order.
    fn take(&mut self, batch: &Batch<'_>, deliver: &mut impl FnMut(Delivery<'_>)) {
        self.cum = Some(batch.seq);
        match batch.kind {
            BatchKind::Ack => {}
            BatchKind::BulkStart => {
                self.ready = false;
                deliver(Delivery::BulkStart);
            }
            BatchKind::BulkDone => {
                self.ready = true;
                self.counters.bulks_received += 1;
                deliver(Delivery::BulkDone);
            }
            BatchKind::Records => {
                for r in batch.records() {
                    match r {
                        Ok(rec) => {
                            self.counters.records_received += 1;
                            deliver(Delivery::Record(&rec));
                        }
                        Err(_) => self.counters.records_malformed += 1,
                    }
                }
            }
        }
    }

    /// Whether a complete copy of the peer's table is here (its last bulk sync ended).
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// No longer a copy of anyone's table (this node became active).
    pub fn unready(&mut self) {
        self.ready = false;
    }

    /// The highest batch had in order (0: none).
    pub fn cum(&self) -> u64 {
        self.cum.unwrap_or(0)
    }

    /// The ack to send, once per batch received (coalesced until sent).
    pub fn poll_ack(&mut self) -> Option<u64> {
        std::mem::take(&mut self.ack_due).then_some(self.cum?)
    }
}
