//! TCP segments (RFC 9293) and their options: MSS, window scale and timestamps (RFC 7323),
//! SACK-permitted and SACK blocks (RFC 2018).
//!
//! The view covers exactly the TCP segment (the IP payload). Checksum-preserving setters
//! update the checksum incrementally (RFC 1624), so a segment with a valid checksum keeps
//! it; setters named `_raw` leave the checksum stale. Options are rewritten in place and
//! may sit at odd offsets; their checksum updates account for that.
//!
//! The options area is read up to its first malformation (a length byte below 2, an option
//! running past the header, or a known kind with the wrong length): the iterator yields
//! `Err(Malformed)` and stops, and the option accessors and rewriters see nothing after it.

use crate::checksum::{self, ChecksumDelta};
use crate::ipv4::protocol;
use crate::{get_u16, get_u32, put_u16, put_u32, Error, Ipv4Addr, Result};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
    pub const OPTIONS: usize = 20;
}

/// The length of a TCP header without options.
pub const HEADER_LEN: usize = field::OPTIONS;
/// The largest options area: a 60-byte header less the 20 fixed bytes.
pub const MAX_OPTIONS_LEN: usize = 40;

/// TCP option kinds (IANA registry).
pub mod option_kind {
    /// End of option list (RFC 9293).
    pub const END: u8 = 0;
    /// No-operation, used for padding (RFC 9293).
    pub const NOP: u8 = 1;
    /// Maximum segment size (RFC 9293).
    pub const MSS: u8 = 2;
    /// Window scale (RFC 7323).
    pub const WINDOW_SCALE: u8 = 3;
    /// SACK permitted (RFC 2018).
    pub const SACK_PERMITTED: u8 = 4;
    /// SACK blocks (RFC 2018).
    pub const SACK: u8 = 5;
    /// Timestamps (RFC 7323).
    pub const TIMESTAMPS: u8 = 8;
}

/// The eight TCP flag bits (RFC 9293; ECE and CWR from RFC 3168).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronise sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN echo.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// True if every flag of `other` is set.
    #[inline]
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if any flag of `other` is set.
    #[inline]
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// True if no flag is set.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Sets the flags of `other`.
    #[inline]
    pub fn insert(&mut self, other: TcpFlags) {
        self.0 |= other.0;
    }

    /// Clears the flags of `other`.
    #[inline]
    pub fn remove(&mut self, other: TcpFlags) {
        self.0 &= !other.0;
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    #[inline]
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for TcpFlags {
    #[inline]
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl core::ops::BitAnd for TcpFlags {
    type Output = TcpFlags;
    #[inline]
    fn bitand(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & rhs.0)
    }
}

/// tcpdump style: `[S]`, `[S.]`, `[P.]`, `[F.]`, `[R]`, `[none]`; `.` is ACK, `E` ECE,
/// `W` CWR.
impl core::fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const NAMES: [(TcpFlags, char); 8] = [
            (TcpFlags::FIN, 'F'),
            (TcpFlags::SYN, 'S'),
            (TcpFlags::RST, 'R'),
            (TcpFlags::PSH, 'P'),
            (TcpFlags::ACK, '.'),
            (TcpFlags::URG, 'U'),
            (TcpFlags::ECE, 'E'),
            (TcpFlags::CWR, 'W'),
        ];
        if self.is_empty() {
            return f.write_str("[none]");
        }
        f.write_str("[")?;
        for (flag, c) in NAMES {
            if self.contains(flag) {
                core::fmt::Write::write_char(f, c)?;
            }
        }
        f.write_str("]")
    }
}

/// One parsed TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// End of option list; nothing after it is read.
    EndOfList,
    /// No-operation (padding).
    Nop,
    /// Maximum segment size (RFC 9293).
    Mss(u16),
    /// Window scale shift count (RFC 7323).
    WindowScale(u8),
    /// SACK permitted (RFC 2018).
    SackPermitted,
    /// SACK blocks (RFC 2018).
    Sack(SackBlocks<'a>),
    /// Timestamps (RFC 7323).
    Timestamps {
        /// The sender's timestamp value.
        tsval: u32,
        /// The echoed timestamp.
        tsecr: u32,
    },
    /// An option of another kind, well delimited.
    Unknown {
        /// The option kind.
        kind: u8,
        /// The bytes after the kind and length.
        data: &'a [u8],
    },
}

/// The blocks of a SACK option (RFC 2018): `(left edge, right edge)` pairs, right edge
/// exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SackBlocks<'a> {
    /// The remaining blocks, a multiple of 8 bytes.
    data: &'a [u8],
}

impl Iterator for SackBlocks<'_> {
    type Item = (u32, u32);

    #[inline]
    fn next(&mut self) -> Option<(u32, u32)> {
        let (block, rest) = self.data.split_first_chunk::<8>()?;
        self.data = rest;
        let left = u32::from_be_bytes([block[0], block[1], block[2], block[3]]);
        let right = u32::from_be_bytes([block[4], block[5], block[6], block[7]]);
        Some((left, right))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.data.len() / 8;
        (n, Some(n))
    }
}

impl ExactSizeIterator for SackBlocks<'_> {}
impl core::iter::FusedIterator for SackBlocks<'_> {}

/// Where one option sits in the options area.
#[derive(Debug, Clone, Copy)]
struct RawOption {
    kind: u8,
    start: usize,
    len: usize,
}

/// True if `len` (kind and length bytes included) is right for `kind`.
#[inline]
fn valid_len(kind: u8, len: usize) -> bool {
    match kind {
        option_kind::MSS => len == 4,
        option_kind::WINDOW_SCALE => len == 3,
        option_kind::SACK_PERMITTED => len == 2,
        option_kind::TIMESTAMPS => len == 10,
        option_kind::SACK => len >= 10 && (len - 2).is_multiple_of(8),
        _ => true,
    }
}

/// The option starting at `pos`: `Ok(None)` past the end, `Err` if malformed.
#[inline]
fn raw_at(opts: &[u8], pos: usize) -> Result<Option<RawOption>> {
    let Some(&kind) = opts.get(pos) else {
        return Ok(None);
    };
    if kind == option_kind::END || kind == option_kind::NOP {
        return Ok(Some(RawOption {
            kind,
            start: pos,
            len: 1,
        }));
    }
    let Some(&len) = opts.get(pos + 1) else {
        return Err(Error::Malformed);
    };
    let len = usize::from(len);
    if len < 2 || len > opts.len() - pos || !valid_len(kind, len) {
        return Err(Error::Malformed);
    }
    Ok(Some(RawOption {
        kind,
        start: pos,
        len,
    }))
}

/// An iterator over the options of a TCP header (see the module docs for how malformed
/// options end it).
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> TcpOptions<'a> {
    /// Iterates over an options area (the bytes between the fixed header and the
    /// payload, or [`crate::build::OptionWriter::as_bytes`]).
    #[inline]
    pub fn new(data: &'a [u8]) -> Self {
        TcpOptions { data, pos: 0 }
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let raw = match raw_at(self.data, self.pos) {
            Ok(Some(raw)) => raw,
            Ok(None) => return None,
            Err(e) => {
                self.pos = self.data.len();
                return Some(Err(e));
            }
        };
        self.pos = raw.start + raw.len;
        let body = self
            .data
            .get(raw.start + 2..raw.start + raw.len)
            .unwrap_or(&[]);
        let opt = match raw.kind {
            option_kind::END => {
                self.pos = self.data.len();
                TcpOption::EndOfList
            }
            option_kind::NOP => TcpOption::Nop,
            option_kind::MSS => TcpOption::Mss(get_u16(body, 0)),
            option_kind::WINDOW_SCALE => TcpOption::WindowScale(body[0]),
            option_kind::SACK_PERMITTED => TcpOption::SackPermitted,
            option_kind::SACK => TcpOption::Sack(SackBlocks { data: body }),
            option_kind::TIMESTAMPS => TcpOption::Timestamps {
                tsval: get_u32(body, 0),
                tsecr: get_u32(body, 4),
            },
            kind => TcpOption::Unknown { kind, data: body },
        };
        Some(Ok(opt))
    }
}

impl core::iter::FusedIterator for TcpOptions<'_> {}

/// A view of a TCP segment: header, options and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSegment<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpSegment<T> {
    /// Wraps a buffer without checking it. The accessors of fixed fields panic if it is
    /// shorter than 20 bytes; use [`Self::new_checked`] on untrusted input.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        TcpSegment { buffer }
    }

    /// Wraps a buffer after checking that it holds the fixed header (20 bytes), a data
    /// offset of at least 5 words, and the whole header it declares. Options are checked
    /// lazily, when read.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let s = TcpSegment { buffer };
        let hl = s.header_len();
        if hl < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if hl > len {
            return Err(Error::Truncated);
        }
        Ok(s)
    }

    /// The source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// The destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The sequence number (raw; compare with serial-number arithmetic, RFC 1982).
    #[inline]
    pub fn seq(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SEQ)
    }

    /// The acknowledgment number (raw).
    #[inline]
    pub fn ack(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::ACK)
    }

    /// The eight flag bits.
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// The header length in bytes (data offset * 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The window field, unscaled.
    #[inline]
    pub fn window(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::WINDOW)
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The urgent pointer.
    #[inline]
    pub fn urgent(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::URGENT)
    }

    /// The options area (possibly empty).
    #[inline]
    pub fn options_bytes(&self) -> &[u8] {
        let hl = self.header_len();
        self.buffer.as_ref().get(field::OPTIONS..hl).unwrap_or(&[])
    }

    /// An iterator over the options.
    #[inline]
    pub fn options(&self) -> TcpOptions<'_> {
        TcpOptions::new(self.options_bytes())
    }

    /// The payload: everything after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let hl = self.header_len();
        self.buffer.as_ref().get(hl..).unwrap_or(&[])
    }

    /// The sequence space the segment occupies: payload length, plus one for SYN and one
    /// for FIN.
    #[inline]
    pub fn sequence_len(&self) -> u32 {
        let f = self.flags();
        self.payload().len() as u32
            + u32::from(f.contains(TcpFlags::SYN))
            + u32::from(f.contains(TcpFlags::FIN))
    }

    /// The first well-formed option of `kind` before any malformation or end of list.
    #[inline]
    fn find(&self, kind: u8) -> Option<RawOption> {
        let opts = self.options_bytes();
        let mut pos = 0;
        while let Ok(Some(raw)) = raw_at(opts, pos) {
            if raw.kind == kind {
                return Some(raw);
            }
            if raw.kind == option_kind::END {
                return None;
            }
            pos = raw.start + raw.len;
        }
        None
    }

    /// The option after the one ending at `pos`, or `None` at the end of the list or at
    /// a malformation.
    #[inline]
    fn next_option(&self, pos: usize) -> Option<RawOption> {
        match raw_at(self.options_bytes(), pos) {
            Ok(Some(raw)) if raw.kind != option_kind::END => Some(raw),
            _ => None,
        }
    }

    /// The MSS option (RFC 9293), if present and well formed.
    #[inline]
    pub fn mss(&self) -> Option<u16> {
        let raw = self.find(option_kind::MSS)?;
        Some(get_u16(self.options_bytes(), raw.start + 2))
    }

    /// The window scale shift (RFC 7323), if present and well formed (not clamped to 14).
    #[inline]
    pub fn window_scale(&self) -> Option<u8> {
        let raw = self.find(option_kind::WINDOW_SCALE)?;
        self.options_bytes().get(raw.start + 2).copied()
    }

    /// True if a well-formed SACK-permitted option is present (RFC 2018).
    #[inline]
    pub fn sack_permitted(&self) -> bool {
        self.find(option_kind::SACK_PERMITTED).is_some()
    }

    /// The timestamps option (RFC 7323) as `(tsval, tsecr)`, if present and well formed.
    #[inline]
    pub fn timestamps(&self) -> Option<(u32, u32)> {
        let raw = self.find(option_kind::TIMESTAMPS)?;
        let o = self.options_bytes();
        Some((get_u32(o, raw.start + 2), get_u32(o, raw.start + 6)))
    }

    /// The blocks of the first SACK option (RFC 2018), if present and well formed.
    #[inline]
    pub fn sack_blocks(&self) -> Option<SackBlocks<'_>> {
        let raw = self.find(option_kind::SACK)?;
        let data = self
            .options_bytes()
            .get(raw.start + 2..raw.start + raw.len)?;
        Some(SackBlocks { data })
    }

    /// True if the checksum is valid for a segment carried from `src` to `dst`. The
    /// buffer must be exactly the segment (the IP payload).
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let b = self.buffer.as_ref();
        let Ok(len) = u16::try_from(b.len()) else {
            return false;
        };
        let pseudo = checksum::pseudo_header_v4(src, dst, protocol::TCP, len);
        checksum::fold(checksum::sum(b, pseudo)) == 0xffff
    }

    /// The whole segment.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpSegment<T> {
    #[inline]
    fn update_u16(&mut self, at: usize, new: u16) {
        let old = get_u16(self.buffer.as_ref(), at);
        put_u16(self.buffer.as_mut(), at, new);
        let c = checksum::update_u16(self.checksum(), old, new);
        self.set_checksum_raw(c);
    }

    #[inline]
    fn update_u32(&mut self, at: usize, new: u32) {
        let old = get_u32(self.buffer.as_ref(), at);
        put_u32(self.buffer.as_mut(), at, new);
        let c = checksum::update_u32(self.checksum(), old, new);
        self.set_checksum_raw(c);
    }

    /// Writes `new` at `at` (any offset) and records the change in `d`.
    #[inline]
    fn rewrite_u32(&mut self, d: &mut ChecksumDelta, at: usize, new: u32) {
        d.u32_at(at, get_u32(self.buffer.as_ref(), at), new);
        put_u32(self.buffer.as_mut(), at, new);
    }

    /// The TSval of the timestamps option whose value starts at `ts_at` (the offset the
    /// options parse found; the TSecr follows it).
    #[inline]
    pub fn tsval_at(&self, ts_at: usize) -> u32 {
        get_u32(self.buffer.as_ref(), ts_at)
    }

    /// The TSecr of the timestamps option at `ts_at` (see [`Self::tsval_at`]).
    #[inline]
    pub fn tsecr_at(&self, ts_at: usize) -> u32 {
        get_u32(self.buffer.as_ref(), ts_at + 4)
    }

    /// Rewrites the TSval at `ts_at` to what `f` makes of it (`None`: left as it is),
    /// recording the checksum change in `d` (options sit at odd offsets too;
    /// [`ChecksumDelta::u32_at`] takes care of that). Returns the TSval now there. One read
    /// and one write: this is on every translated segment.
    #[inline]
    pub fn map_tsval(
        &mut self,
        d: &mut ChecksumDelta,
        ts_at: usize,
        f: impl FnOnce(u32) -> Option<u32>,
    ) -> u32 {
        self.map_u32(d, ts_at, f)
    }

    /// The same as [`Self::map_tsval`] for the TSecr of the option at `ts_at`.
    #[inline]
    pub fn map_tsecr(
        &mut self,
        d: &mut ChecksumDelta,
        ts_at: usize,
        f: impl FnOnce(u32) -> Option<u32>,
    ) -> u32 {
        self.map_u32(d, ts_at + 4, f)
    }

    #[inline]
    fn map_u32(
        &mut self,
        d: &mut ChecksumDelta,
        at: usize,
        f: impl FnOnce(u32) -> Option<u32>,
    ) -> u32 {
        let old = get_u32(self.buffer.as_ref(), at);
        match f(old) {
            Some(new) => {
                d.u32_at(at, old, new);
                put_u32(self.buffer.as_mut(), at, new);
                new
            }
            None => old,
        }
    }

    /// Sets the source port, keeping the checksum valid.
    #[inline]
    pub fn set_src_port(&mut self, port: u16) {
        self.update_u16(field::SRC_PORT, port);
    }

    /// Sets the destination port, keeping the checksum valid.
    #[inline]
    pub fn set_dst_port(&mut self, port: u16) {
        self.update_u16(field::DST_PORT, port);
    }

    /// Sets the sequence number, keeping the checksum valid.
    #[inline]
    pub fn set_seq(&mut self, seq: u32) {
        self.update_u32(field::SEQ, seq);
    }

    /// Sets the acknowledgment number, keeping the checksum valid.
    #[inline]
    pub fn set_ack(&mut self, ack: u32) {
        self.update_u32(field::ACK, ack);
    }

    /// Sets the flags, keeping the checksum valid.
    #[inline]
    pub fn set_flags(&mut self, flags: TcpFlags) {
        let word = get_u16(self.buffer.as_ref(), field::DATA_OFF);
        self.update_u16(field::DATA_OFF, (word & 0xff00) | u16::from(flags.0));
    }

    /// Sets the window, keeping the checksum valid.
    #[inline]
    pub fn set_window(&mut self, window: u16) {
        self.update_u16(field::WINDOW, window);
    }

    /// Sets the source port; the checksum is left stale.
    #[inline]
    pub fn set_src_port_raw(&mut self, port: u16) {
        put_u16(self.buffer.as_mut(), field::SRC_PORT, port);
    }

    /// Sets the destination port; the checksum is left stale.
    #[inline]
    pub fn set_dst_port_raw(&mut self, port: u16) {
        put_u16(self.buffer.as_mut(), field::DST_PORT, port);
    }

    /// Sets the sequence number; the checksum is left stale.
    #[inline]
    pub fn set_seq_raw(&mut self, seq: u32) {
        put_u32(self.buffer.as_mut(), field::SEQ, seq);
    }

    /// Sets the acknowledgment number; the checksum is left stale.
    #[inline]
    pub fn set_ack_raw(&mut self, ack: u32) {
        put_u32(self.buffer.as_mut(), field::ACK, ack);
    }

    /// Sets the flags; the checksum is left stale.
    #[inline]
    pub fn set_flags_raw(&mut self, flags: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = flags.0;
    }

    /// Sets the window; the checksum is left stale.
    #[inline]
    pub fn set_window_raw(&mut self, window: u16) {
        put_u16(self.buffer.as_mut(), field::WINDOW, window);
    }

    /// Sets the urgent pointer; the checksum is left stale.
    #[inline]
    pub fn set_urgent_raw(&mut self, urgent: u16) {
        put_u16(self.buffer.as_mut(), field::URGENT, urgent);
    }

    /// Sets the header length (`len / 4` into the data offset; `len` should be a
    /// multiple of 4 between 20 and 60), keeping the low four bits of that byte. The
    /// checksum is left stale.
    #[inline]
    pub fn set_header_len_raw(&mut self, len: usize) {
        let b = self.buffer.as_mut();
        b[field::DATA_OFF] = (((len / 4) as u8) << 4) | (b[field::DATA_OFF] & 0x0f);
    }

    /// Stores `checksum` in the checksum field as is.
    #[inline]
    pub fn set_checksum_raw(&mut self, checksum: u16) {
        put_u16(self.buffer.as_mut(), field::CHECKSUM, checksum);
    }

    /// Applies changes made outside the segment that its checksum covers, such as an IP
    /// address of the pseudo-header (see [`ChecksumDelta::ipv4`]).
    #[inline]
    pub fn adjust_checksum(&mut self, delta: ChecksumDelta) {
        let c = delta.apply(self.checksum());
        self.set_checksum_raw(c);
    }

    /// Computes the checksum from scratch over the whole buffer and the pseudo-header
    /// for `src` and `dst`, and stores it. A buffer over 65535 bytes cannot be a segment;
    /// its checksum field is then left zero.
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum_raw(0);
        let b = self.buffer.as_ref();
        if let Ok(len) = u16::try_from(b.len()) {
            let pseudo = checksum::pseudo_header_v4(src, dst, protocol::TCP, len);
            let c = checksum::finish(checksum::sum(b, pseudo));
            self.set_checksum_raw(c);
        }
    }

    /// Rewrites the value of the first MSS option in place, keeping the checksum valid.
    /// Returns false if there is none.
    pub fn set_mss(&mut self, mss: u16) -> bool {
        let Some(raw) = self.find(option_kind::MSS) else {
            return false;
        };
        let at = field::OPTIONS + raw.start + 2;
        let mut d = ChecksumDelta::new();
        d.u16_at(at, get_u16(self.buffer.as_ref(), at), mss);
        put_u16(self.buffer.as_mut(), at, mss);
        self.adjust_checksum(d);
        true
    }

    /// Rewrites the shift of the first window scale option in place, keeping the
    /// checksum valid. Returns false if there is none.
    pub fn set_window_scale(&mut self, shift: u8) -> bool {
        let Some(raw) = self.find(option_kind::WINDOW_SCALE) else {
            return false;
        };
        let at = field::OPTIONS + raw.start + 2;
        let b = self.buffer.as_mut();
        let mut d = ChecksumDelta::new();
        d.u8_at(at, b[at], shift);
        b[at] = shift;
        self.adjust_checksum(d);
        true
    }

    /// Rewrites the first timestamps option in place, keeping the checksum valid.
    /// Returns false if there is none.
    pub fn set_timestamps(&mut self, tsval: u32, tsecr: u32) -> bool {
        let Some(raw) = self.find(option_kind::TIMESTAMPS) else {
            return false;
        };
        let at = field::OPTIONS + raw.start + 2;
        let mut d = ChecksumDelta::new();
        self.rewrite_u32(&mut d, at, tsval);
        self.rewrite_u32(&mut d, at + 4, tsecr);
        self.adjust_checksum(d);
        true
    }

    /// Rewrites every edge of every SACK option in place with `f`, keeping the checksum
    /// valid, and returns the number of blocks rewritten.
    pub fn map_sack_blocks(&mut self, mut f: impl FnMut(u32) -> u32) -> usize {
        let mut d = ChecksumDelta::new();
        let mut blocks = 0;
        let mut pos = 0;
        while let Some(raw) = self.next_option(pos) {
            pos = raw.start + raw.len;
            if raw.kind != option_kind::SACK {
                continue;
            }
            let first = field::OPTIONS + raw.start + 2;
            for at in (first..field::OPTIONS + pos).step_by(8) {
                let left = f(get_u32(self.buffer.as_ref(), at));
                let right = f(get_u32(self.buffer.as_ref(), at + 4));
                self.rewrite_u32(&mut d, at, left);
                self.rewrite_u32(&mut d, at + 4, right);
                blocks += 1;
            }
        }
        self.adjust_checksum(d);
        blocks
    }

    /// Overwrites every option of `kind` with NOPs (the header length is unchanged),
    /// keeping the checksum valid, and returns how many options were removed. END and
    /// NOP themselves are never removed.
    pub fn nop_out(&mut self, kind: u8) -> usize {
        if kind == option_kind::END || kind == option_kind::NOP {
            return 0;
        }
        let mut d = ChecksumDelta::new();
        let mut count = 0;
        let mut pos = 0;
        while let Some(raw) = self.next_option(pos) {
            pos = raw.start + raw.len;
            if raw.kind != kind {
                continue;
            }
            let start = field::OPTIONS + raw.start;
            let bytes = &mut self.buffer.as_mut()[start..field::OPTIONS + pos];
            for (i, byte) in bytes.iter_mut().enumerate() {
                d.u8_at(start + i, *byte, option_kind::NOP);
                *byte = option_kind::NOP;
            }
            count += 1;
        }
        self.adjust_checksum(d);
        count
    }

    /// The options area, writable (the checksum is not maintained).
    #[inline]
    pub fn options_bytes_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        self.buffer
            .as_mut()
            .get_mut(field::OPTIONS..hl)
            .unwrap_or(&mut [])
    }

    /// The whole segment, writable (the checksum is not maintained: account for the
    /// change with [`TcpSegment::adjust_checksum`]).
    #[inline]
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// The payload, writable (the checksum is not maintained).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        self.buffer.as_mut().get_mut(hl..).unwrap_or(&mut [])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{fixtures, EthernetFrame, Ipv4Packet};
    use std::string::ToString;
    use std::vec::Vec;

    fn client() -> Ipv4Addr {
        Ipv4Addr::new(192, 168, 1, 10)
    }
    fn server() -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, 2)
    }

    /// The TCP segment inside an Ethernet frame fixture, with its IP addresses.
    fn segment_of(frame: &[u8]) -> (Vec<u8>, Ipv4Addr, Ipv4Addr) {
        let eth = EthernetFrame::new_checked(frame).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.protocol(), protocol::TCP);
        (ip.payload().to_vec(), ip.src(), ip.dst())
    }

    #[test]
    fn parse_syn() {
        let (seg, src, dst) = segment_of(&fixtures::SYN_FRAME);
        let s = TcpSegment::new_checked(&seg[..]).unwrap();
        assert_eq!((s.src_port(), s.dst_port()), (54321, 80));
        assert_eq!((s.seq(), s.ack()), (0x4e6f_7a12, 0));
        assert_eq!(s.flags(), TcpFlags::SYN);
        assert_eq!(s.flags().to_string(), "[S]");
        assert_eq!((s.header_len(), s.window(), s.urgent()), (40, 64240, 0));
        assert_eq!(s.checksum(), 0xadff);
        assert!(s.verify_checksum(src, dst));
        assert!(!s.verify_checksum(src, Ipv4Addr::new(10, 0, 0, 3)));
        assert!(s.payload().is_empty());
        assert_eq!(s.sequence_len(), 1);
        assert_eq!(
            s.options().collect::<Vec<_>>(),
            [
                Ok(TcpOption::Mss(1460)),
                Ok(TcpOption::SackPermitted),
                Ok(TcpOption::Timestamps {
                    tsval: 0x0a1b_2c3d,
                    tsecr: 0
                }),
                Ok(TcpOption::Nop),
                Ok(TcpOption::WindowScale(7)),
            ]
        );
        assert_eq!(s.mss(), Some(1460));
        assert_eq!(s.window_scale(), Some(7));
        assert!(s.sack_permitted());
        assert_eq!(s.timestamps(), Some((0x0a1b_2c3d, 0)));
        assert!(s.sack_blocks().is_none());
    }

    #[test]
    fn parse_vlan_syn_ack() {
        let eth = EthernetFrame::new_checked(&fixtures::VLAN_SYN_ACK_FRAME[..]).unwrap();
        assert_eq!(eth.vlan_tci(), Some(0x6064));
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.src(), ip.dst()), (server(), client()));
        let s = TcpSegment::new_checked(ip.payload()).unwrap();
        assert!(s.verify_checksum(server(), client()));
        assert_eq!(s.flags(), TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(s.flags().to_string(), "[S.]");
        assert_eq!(s.ack(), 0x4e6f_7a13);
        assert_eq!((s.mss(), s.window_scale()), (Some(1460), Some(9)));
        assert_eq!(s.timestamps(), Some((0x1122_3344, 0x0a1b_2c3d)));
    }

    #[test]
    fn parse_data() {
        let (seg, src, dst) = segment_of(&fixtures::DATA_FRAME);
        let s = TcpSegment::new_checked(&seg[..]).unwrap();
        assert!(s.verify_checksum(src, dst));
        assert_eq!(s.flags(), TcpFlags::PSH | TcpFlags::ACK);
        assert_eq!(s.flags().to_string(), "[P.]");
        assert_eq!(s.header_len(), 32);
        assert_eq!(s.payload(), b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(s.sequence_len(), 27);
        assert_eq!(s.timestamps(), Some((0x0a1b_2c9f, 0x5e6f_7081)));
        assert_eq!(
            (s.mss(), s.window_scale(), s.sack_permitted()),
            (None, None, false)
        );
    }

    #[test]
    fn parse_sack() {
        let (seg, src, dst) = segment_of(&fixtures::SACK_FRAME);
        let s = TcpSegment::new_checked(&seg[..]).unwrap();
        assert!(s.verify_checksum(src, dst));
        assert_eq!(s.flags().to_string(), "[.]");
        let blocks = s.sack_blocks().unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            blocks.collect::<Vec<_>>(),
            [(0x9a8b_8000, 0x9a8b_8400), (0x9a8b_9000, 0x9a8b_9800)]
        );
    }

    #[test]
    fn flags() {
        let mut f = TcpFlags::SYN | TcpFlags::ACK;
        assert!(f.contains(TcpFlags::SYN) && !f.contains(TcpFlags::SYN | TcpFlags::FIN));
        assert!(f.intersects(TcpFlags::SYN | TcpFlags::FIN));
        f.remove(TcpFlags::SYN);
        f |= TcpFlags::FIN;
        assert_eq!(f.to_string(), "[F.]");
        f.insert(TcpFlags::ECE | TcpFlags::CWR | TcpFlags::URG | TcpFlags::RST | TcpFlags::PSH);
        assert_eq!(f.to_string(), "[FRP.UEW]");
        assert_eq!((f & TcpFlags::ACK), TcpFlags::ACK);
        assert_eq!(TcpFlags::default().to_string(), "[none]");
        assert!(TcpFlags::default().is_empty());
    }

    #[test]
    fn every_prefix_never_panics() {
        for frame in [
            &fixtures::SYN_FRAME[..],
            &fixtures::DATA_FRAME[..],
            &fixtures::SACK_FRAME[..],
            &fixtures::VLAN_SYN_ACK_FRAME[..],
        ] {
            for n in 0..=frame.len() {
                exercise_frame(&frame[..n]);
            }
            let (seg, _, _) = segment_of(frame);
            for n in 0..=seg.len() {
                match TcpSegment::new_checked(&seg[..n]) {
                    Ok(s) => exercise(&s),
                    Err(e) => {
                        assert_eq!(e, Error::Truncated);
                        assert!(
                            n < seg.len() && n < TcpSegment::new_unchecked(&seg[..]).header_len()
                        );
                    }
                }
            }
        }
    }

    fn exercise_frame(b: &[u8]) {
        let Ok(eth) = EthernetFrame::new_checked(b) else {
            return;
        };
        let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
            return;
        };
        let _ = ip.verify_checksum();
        if let Ok(s) = TcpSegment::new_checked(ip.payload()) {
            exercise(&s);
        }
    }

    fn exercise(s: &TcpSegment<&[u8]>) {
        let _ = (
            s.src_port(),
            s.dst_port(),
            s.seq(),
            s.ack(),
            s.flags(),
            s.window(),
        );
        let _ = (s.checksum(), s.urgent(), s.payload(), s.sequence_len());
        let _ = (
            s.mss(),
            s.window_scale(),
            s.sack_permitted(),
            s.timestamps(),
        );
        let _ = s.sack_blocks().map(|b| b.count());
        let _ = s.options().count();
        let _ = s.verify_checksum(client(), server());
        let mut copy = s.as_bytes().to_vec();
        let mut m = TcpSegment::new_checked(&mut copy[..]).unwrap();
        let _ = (m.set_mss(1), m.set_window_scale(1), m.set_timestamps(1, 2));
        let _ = (
            m.map_sack_blocks(|x| x + 1),
            m.nop_out(option_kind::SACK_PERMITTED),
        );
    }

    /// A 20-byte header followed by `options` (padded with END to a multiple of 4) and
    /// `payload`, with a valid checksum.
    fn segment_with(options: &[u8], payload: &[u8]) -> Vec<u8> {
        let olen = options.len().div_ceil(4) * 4;
        let mut b = std::vec![0u8; 20 + olen];
        b[20..20 + options.len()].copy_from_slice(options);
        b.extend_from_slice(payload);
        let mut s = TcpSegment::new_unchecked(&mut b[..]);
        s.set_src_port_raw(80);
        s.set_dst_port_raw(54321);
        s.set_seq_raw(0xfedc_ba98);
        s.set_ack_raw(0x0123_4567);
        s.set_header_len_raw(20 + olen);
        s.set_flags_raw(TcpFlags::ACK | TcpFlags::PSH);
        s.set_window_raw(501);
        s.fill_checksum(server(), client());
        b
    }

    fn malformed_options(options: &[u8]) {
        let b = segment_with(options, b"x");
        let s = TcpSegment::new_checked(&b[..]).unwrap();
        let items: Vec<_> = s.options().collect();
        assert_eq!(items.last(), Some(&Err(Error::Malformed)), "{options:02x?}");
        assert_eq!(items.iter().filter(|o| o.is_err()).count(), 1);
        assert_eq!(s.mss(), None);
        assert_eq!(s.window_scale(), None);
        assert_eq!(s.timestamps(), None);
        assert!(!s.sack_permitted());
        assert!(s.sack_blocks().is_none());
        let mut b2 = b.clone();
        let mut m = TcpSegment::new_checked(&mut b2[..]).unwrap();
        assert!(!m.set_mss(1) && !m.set_window_scale(1) && !m.set_timestamps(1, 2));
        assert_eq!(m.map_sack_blocks(|x| x + 1), 0);
        assert_eq!(m.nop_out(option_kind::TIMESTAMPS), 0);
        assert_eq!(b2, b);
    }

    #[test]
    fn malformed_options_are_errors() {
        malformed_options(&[1, 1, 0x22, 0]); // length 0
        malformed_options(&[1, 0x22, 1, 2]); // length 1
        malformed_options(&[1, 1, 1, 0x22]); // kind without length byte
        malformed_options(&[0x22, 7, 1, 1]); // runs past the header
        malformed_options(&[2, 3, 5, 1]); // MSS of length 3
        malformed_options(&[2, 5, 5, 0xb4, 0]); // MSS of length 5
        malformed_options(&[3, 4, 7, 0]); // window scale of length 4
        malformed_options(&[4, 3, 0, 1]); // SACK-permitted of length 3
        malformed_options(&[8, 8, 0, 0, 0, 0, 0, 0]); // timestamps of length 8
        malformed_options(&[5, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // SACK of length 11
        malformed_options(&[5, 2, 1, 1]); // SACK with no block
    }

    #[test]
    fn end_of_list_stops() {
        let b = segment_with(&[0, 2, 4, 5, 0xb4], b"");
        let s = TcpSegment::new_checked(&b[..]).unwrap();
        assert_eq!(s.options().collect::<Vec<_>>(), [Ok(TcpOption::EndOfList)]);
        assert_eq!(s.mss(), None);
        let b = segment_with(&[0x99, 4, 0xaa, 0xbb, 1, 0], b"");
        let s = TcpSegment::new_checked(&b[..]).unwrap();
        assert_eq!(
            s.options().next(),
            Some(Ok(TcpOption::Unknown {
                kind: 0x99,
                data: &[0xaa, 0xbb]
            }))
        );
        assert_eq!(s.options().count(), 3);
    }

    #[test]
    fn header_checks() {
        let b = segment_with(&[], b"");
        let mut bad = b.clone();
        bad[12] = 0x40; // data offset 4
        assert_eq!(TcpSegment::new_checked(&bad[..]), Err(Error::Malformed));
        bad[12] = 0x60; // 24 > 20
        assert_eq!(TcpSegment::new_checked(&bad[..]), Err(Error::Truncated));
        assert_eq!(TcpSegment::new_checked(&b[..19]), Err(Error::Truncated));
        // Unchecked views with a lying data offset still do not panic on slices.
        let s = TcpSegment::new_unchecked(&bad[..]);
        assert!(s.payload().is_empty() && s.options_bytes().is_empty());
        assert_eq!(s.mss(), None);
        bad[12] = 0x00;
        let s = TcpSegment::new_unchecked(&bad[..]);
        assert!(s.options_bytes().is_empty());
    }

    /// Options at odd offsets: NOP, MSS, WS, NOP, TS, SACK (one block), SACK-permitted,
    /// END. MSS value at segment offset 23, WS shift at 27, TS at 31, SACK edges at 41.
    const ODD_OPTIONS: [u8; 32] = [
        1, 2, 4, 0x05, 0xb4, 3, 3, 7, 1, 8, 10, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 5,
        10, 0xa0, 0xa1, 0xa2, 0xa3, 0xb0, 0xb1, 0xb2, 0xb3, 4, 2, 0,
    ];

    /// Checks that the incremental checksum equals a full recompute.
    fn assert_incremental_ok(b: &[u8], src: Ipv4Addr, dst: Ipv4Addr) {
        let s = TcpSegment::new_checked(b).unwrap();
        assert!(s.verify_checksum(src, dst));
        let mut copy = b.to_vec();
        let mut full = TcpSegment::new_checked(&mut copy[..]).unwrap();
        full.fill_checksum(src, dst);
        assert_eq!(s.checksum(), full.checksum());
    }

    #[test]
    fn odd_offset_options_rewritten_in_place() {
        // An odd-length payload too, so the padded last byte is exercised.
        let mut b = segment_with(&ODD_OPTIONS, b"hello");
        let (src, dst) = (server(), client());
        assert_incremental_ok(&b, src, dst);
        let mut s = TcpSegment::new_checked(&mut b[..]).unwrap();
        assert_eq!(s.mss(), Some(1460));
        assert!(s.set_mss(1380));
        assert_eq!(s.mss(), Some(1380));
        assert_incremental_ok(s.as_bytes(), src, dst);
        assert!(s.set_window_scale(14));
        assert_eq!(s.window_scale(), Some(14));
        assert_incremental_ok(s.as_bytes(), src, dst);
        assert!(s.set_timestamps(0xdead_beef, 0x0bad_f00d));
        assert_eq!(s.timestamps(), Some((0xdead_beef, 0x0bad_f00d)));
        assert_incremental_ok(s.as_bytes(), src, dst);
        assert_eq!(s.map_sack_blocks(|e| e.wrapping_add(0x8000_0001)), 1);
        assert_eq!(
            s.sack_blocks().unwrap().next(),
            Some((
                0xa0a1_a2a3u32.wrapping_add(0x8000_0001),
                0xb0b1_b2b3u32.wrapping_add(0x8000_0001)
            ))
        );
        assert_incremental_ok(s.as_bytes(), src, dst);
        assert_eq!(s.nop_out(option_kind::TIMESTAMPS), 1);
        assert_eq!(s.timestamps(), None);
        assert_incremental_ok(s.as_bytes(), src, dst);
        assert_eq!(s.nop_out(option_kind::SACK_PERMITTED), 1);
        assert_eq!(s.nop_out(option_kind::MSS), 1);
        assert_eq!(s.nop_out(option_kind::MSS), 0);
        assert_eq!(s.nop_out(option_kind::NOP), 0);
        assert_incremental_ok(s.as_bytes(), src, dst);
        assert!(!s.set_mss(1) && !s.set_timestamps(1, 2) && !s.sack_permitted());
        assert_eq!(s.window_scale(), Some(14));
        assert_eq!(s.payload(), b"hello");
    }

    #[test]
    fn every_fixed_setter_keeps_checksum() {
        for frame in [
            &fixtures::SYN_FRAME[..],
            &fixtures::DATA_FRAME[..],
            &fixtures::SACK_FRAME[..],
        ] {
            let (mut seg, src, dst) = segment_of(frame);
            let mut s = TcpSegment::new_checked(&mut seg[..]).unwrap();
            s.set_src_port(8080);
            assert_incremental_ok(s.as_bytes(), src, dst);
            s.set_dst_port(443);
            assert_incremental_ok(s.as_bytes(), src, dst);
            s.set_seq(s.seq().wrapping_sub(0x1234_5678));
            assert_incremental_ok(s.as_bytes(), src, dst);
            s.set_ack(0xffff_ffff);
            assert_incremental_ok(s.as_bytes(), src, dst);
            let hl = s.header_len();
            s.set_flags(TcpFlags::FIN | TcpFlags::ACK | TcpFlags::CWR);
            assert_incremental_ok(s.as_bytes(), src, dst);
            assert_eq!(s.flags(), TcpFlags::FIN | TcpFlags::ACK | TcpFlags::CWR);
            assert_eq!(s.header_len(), hl);
            s.set_window(0);
            assert_incremental_ok(s.as_bytes(), src, dst);
            s.set_window(0xffff);
            assert_incremental_ok(s.as_bytes(), src, dst);
            assert_eq!(
                s.map_sack_blocks(|e| e ^ 0x5555_aaaa),
                s.sack_blocks().map_or(0, |b| b.len())
            );
            assert_incremental_ok(s.as_bytes(), src, dst);
            let _ = s.set_timestamps(1, 0xffff_ffff);
            assert_incremental_ok(s.as_bytes(), src, dst);

            // DNAT: the destination address of the pseudo-header changes.
            let new_dst = Ipv4Addr::new(10, 1, 2, 3);
            let mut d = ChecksumDelta::new();
            d.ipv4(dst, new_dst);
            s.adjust_checksum(d);
            assert_incremental_ok(s.as_bytes(), src, new_dst);
        }
    }

    #[test]
    fn raw_setters_leave_checksum_stale() {
        let (mut seg, src, dst) = segment_of(&fixtures::DATA_FRAME);
        let mut s = TcpSegment::new_checked(&mut seg[..]).unwrap();
        s.set_seq_raw(1);
        assert!(!s.verify_checksum(src, dst));
        s.fill_checksum(src, dst);
        assert!(s.verify_checksum(src, dst));
        s.set_urgent_raw(5);
        s.set_checksum_raw(0);
        assert_eq!((s.urgent(), s.checksum()), (5, 0));
        s.options_bytes_mut()[0] = 1;
        s.payload_mut()[0] = b'P';
        assert_eq!(&s.payload()[..3], b"PET");
    }
}
