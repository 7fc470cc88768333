//! A small nfnetlink (`NETLINK_NETFILTER`) client for nf_tables: message building, batched
//! transactions with one acknowledgement per message, and dumps.
//!
//! Wire format (all host byte order except where nf_tables says big endian):
//! `nlmsghdr { len u32, type u16, flags u16, seq u32, pid u32 }`, then
//! `nfgenmsg { family u8, version u8, res_id be16 }`, then attributes
//! `nlattr { len u16, type u16 }` + payload, each padded to 4 bytes.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::thread;
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::sockopt;
use rustix::net::{
    bind, recv, send, socket_with, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType,
};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

use crate::EnforceError;

// Netlink message types and flags (linux/netlink.h).
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_MULTI: u16 = 0x2;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_DUMP_INTR: u16 = 0x10;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
pub(crate) const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

// nfnetlink (linux/netfilter/nfnetlink.h).
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// `NFPROTO_INET`: the `inet` family of nf_tables.
pub(crate) const NFPROTO_INET: u8 = 1;
const NFPROTO_UNSPEC: u8 = 0;

// nf_tables message types (linux/netfilter/nf_tables.h, enum nf_tables_msg_types).
pub(crate) const NFT_MSG_GETCHAIN: u16 = 4;
pub(crate) const NFT_MSG_GETRULE: u16 = 7;
pub(crate) const NFT_MSG_GETSET: u16 = 10;
pub(crate) const NFT_MSG_NEWSETELEM: u16 = 12;
pub(crate) const NFT_MSG_GETSETELEM: u16 = 13;
pub(crate) const NFT_MSG_DELSETELEM: u16 = 14;

const NLMSG_HDRLEN: usize = 16;
const NFGENMSG_LEN: usize = 4;

/// Largest attribute (its 16-bit length field); a nest of set elements must stay below it.
pub(crate) const MAX_ATTR_LEN: usize = u16::MAX as usize;

/// Receive buffer for one datagram; dumps come in skbs of at most 32 KiB and error replies
/// echo the failing message (up to 64 KiB + headers).
const RECV_BUF: usize = 256 << 10;
/// Kernel socket buffers, grown per transaction to fit (`SO_*BUFFORCE`, we are root).
const MIN_SOCK_BUF: usize = 4 << 20;
/// Bytes of receive buffer reserved per message of a batch (an ack skb costs ~1 KiB truesize).
const RCVBUF_PER_MESSAGE: usize = 8 << 10;
/// A reply the kernel owes us that has not come after this long is an error.
const RECV_TIMEOUT: Duration = Duration::from_secs(10);

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A growing buffer of netlink messages with attribute writers.
#[derive(Debug, Default)]
pub(crate) struct MsgBuf {
    buf: Vec<u8>,
}

impl MsgBuf {
    /// Starts a message; returns its offset for [`MsgBuf::end_msg`].
    fn begin_msg(&mut self, ty: u16, flags: u16, family: u8, res_id: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // seq, patched on send
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
        self.buf.push(family);
        self.buf.push(0); // NFNETLINK_V0
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        start
    }

    fn end_msg(&mut self, start: usize) {
        let len = u32::try_from(self.buf.len() - start).unwrap_or(u32::MAX);
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    fn set_seq(&mut self, start: usize, seq: u32) {
        self.buf[start + 8..start + 12].copy_from_slice(&seq.to_ne_bytes());
    }

    /// Appends an attribute.
    pub fn attr(&mut self, ty: u16, data: &[u8]) {
        let len = u16::try_from(4 + data.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align4(self.buf.len()), 0);
    }

    /// Appends a NUL-terminated string attribute.
    pub fn attr_str(&mut self, ty: u16, s: &str) {
        let len = u16::try_from(4 + s.len() + 1).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
        self.buf.resize(align4(self.buf.len()), 0);
    }

    /// Appends a big-endian u64 attribute.
    pub fn attr_be64(&mut self, ty: u16, v: u64) {
        self.attr(ty, &v.to_be_bytes());
    }

    /// Opens a nested attribute; returns its offset for [`MsgBuf::nest_end`].
    pub fn nest_begin(&mut self, ty: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        start
    }

    /// Closes a nested attribute.
    pub fn nest_end(&mut self, start: usize) {
        let len = u16::try_from(self.buf.len() - start).unwrap_or(u16::MAX);
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }
}

/// One nf_tables transaction under construction: batch begin, messages, batch end.
#[derive(Debug)]
pub(crate) struct Batch {
    msg: MsgBuf,
    /// Offset and description (for errors) of every message inside the batch.
    msgs: Vec<(usize, String)>,
    /// The message being written, if any.
    open: Option<usize>,
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        let mut msg = MsgBuf::default();
        let begin = msg.begin_msg(
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            NFPROTO_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
        );
        msg.end_msg(begin);
        Self {
            msg,
            msgs: Vec::new(),
            open: None,
        }
    }

    /// Starts an nf_tables message (`NLM_F_REQUEST | NLM_F_ACK` are added); `label` names it
    /// in errors.
    pub fn begin(&mut self, nft_msg: u16, flags: u16, family: u8, label: String) -> &mut MsgBuf {
        self.end();
        let ty = (NFNL_SUBSYS_NFTABLES << 8) | nft_msg;
        let start = self
            .msg
            .begin_msg(ty, flags | NLM_F_REQUEST | NLM_F_ACK, family, 0);
        self.msgs.push((start, label));
        self.open = Some(start);
        &mut self.msg
    }

    /// Closes the open message, if any.
    pub fn end(&mut self) {
        if let Some(start) = self.open.take() {
            self.msg.end_msg(start);
        }
    }
}

/// Iterates over the attributes in `data`.
#[derive(Debug, Clone)]
pub(crate) struct Attrs<'a> {
    data: &'a [u8],
}

/// The attributes in `data`.
pub(crate) fn attrs(data: &[u8]) -> Attrs<'_> {
    Attrs { data }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([self.data[0], self.data[1]]));
        let ty = u16::from_ne_bytes([self.data[2], self.data[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > self.data.len() {
            self.data = &[];
            return None;
        }
        let payload = &self.data[4..len];
        self.data = self.data.get(align4(len)..).unwrap_or(&[]);
        Some((ty, payload))
    }
}

/// A big-endian u32 payload.
pub(crate) fn be32(d: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(..4)?.try_into().ok()?))
}

/// A big-endian u64 payload.
pub(crate) fn be64(d: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(d.get(..8)?.try_into().ok()?))
}

/// A NUL-terminated string payload (invalid UTF-8 gives `""`).
pub(crate) fn cstr(d: &[u8]) -> &str {
    let end = d.iter().position(|&b| b == 0).unwrap_or(d.len());
    std::str::from_utf8(&d[..end]).unwrap_or("")
}

/// One netlink message read from a datagram.
struct Msg<'a> {
    ty: u16,
    flags: u16,
    seq: u32,
    payload: &'a [u8],
}

fn messages(mut data: &[u8]) -> impl Iterator<Item = Msg<'_>> {
    std::iter::from_fn(move || {
        if data.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes(data[0..4].try_into().ok()?) as usize;
        if len < NLMSG_HDRLEN || len > data.len() {
            data = &[];
            return None;
        }
        let msg = Msg {
            ty: u16::from_ne_bytes(data[4..6].try_into().ok()?),
            flags: u16::from_ne_bytes(data[6..8].try_into().ok()?),
            seq: u32::from_ne_bytes(data[8..12].try_into().ok()?),
            payload: &data[NLMSG_HDRLEN..len],
        };
        data = data.get(align4(len)..).unwrap_or(&[]);
        Some(msg)
    })
}

/// The errno of an `NLMSG_ERROR` payload (`0` is an acknowledgement).
fn error_code(payload: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(payload.get(..4)?.try_into().ok()?))
}

fn errno_of(code: i32) -> Errno {
    Errno::from_raw_os_error(code.saturating_neg())
}

/// A `NETLINK_NETFILTER` socket bound to one network namespace.
#[derive(Debug)]
pub(crate) struct NfSocket {
    fd: OwnedFd,
    seq: u32,
    rbuf: Vec<u8>,
    sndbuf: usize,
    rcvbuf: usize,
}

/// How a dump ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DumpEnd {
    /// Every object was delivered once.
    Complete,
    /// The kernel flagged the dump as inconsistent (the objects changed meanwhile): retry.
    Interrupted,
}

impl NfSocket {
    /// Opens a socket in the current network namespace, or in the one `netns` names (a
    /// `/run/netns/NAME` bind mount), from a helper thread that moved into it; the socket
    /// stays bound to that namespace for its whole life.
    pub fn open(netns: Option<&Path>) -> Result<Self, EnforceError> {
        let fd = match netns {
            None => new_socket()?,
            Some(path) => {
                let file = File::open(path).map_err(|source| EnforceError::Io {
                    what: format!("opening network namespace {}", path.display()),
                    source,
                })?;
                thread::scope(|s| {
                    s.spawn(|| {
                        move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network))
                            .map_err(|e| {
                            EnforceError::sys(
                                format!("entering network namespace {}", path.display()),
                                e,
                            )
                        })?;
                        new_socket()
                    })
                    .join()
                    .unwrap_or_else(|_| {
                        Err(EnforceError::Protocol("namespace thread panicked".into()))
                    })
                })?
            }
        };
        let mut sock = Self {
            fd,
            seq: std::process::id().wrapping_mul(0x9e37_79b9),
            rbuf: vec![0; RECV_BUF],
            sndbuf: 0,
            rcvbuf: 0,
        };
        sock.grow_buffers(MIN_SOCK_BUF, MIN_SOCK_BUF)?;
        Ok(sock)
    }

    fn grow_buffers(&mut self, snd: usize, rcv: usize) -> Result<(), EnforceError> {
        if snd > self.sndbuf {
            // The kernel doubles the value for bookkeeping overhead; the usable payload is
            // then at least `snd`.
            sockopt::set_socket_send_buffer_size_force(&self.fd, snd)
                .or_else(|_| sockopt::set_socket_send_buffer_size(&self.fd, snd))
                .map_err(|e| EnforceError::sys("setting the netlink send buffer", e))?;
            self.sndbuf = snd;
        }
        if rcv > self.rcvbuf {
            sockopt::set_socket_recv_buffer_size_force(&self.fd, rcv)
                .or_else(|_| sockopt::set_socket_recv_buffer_size(&self.fd, rcv))
                .map_err(|e| EnforceError::sys("setting the netlink receive buffer", e))?;
            self.rcvbuf = rcv;
        }
        Ok(())
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Drops replies left over from an earlier request that failed half way.
    fn drain(&mut self) {
        while let Ok((n, _)) = recv(&self.fd, &mut self.rbuf[..], RecvFlags::DONTWAIT) {
            if n == 0 {
                break;
            }
        }
    }

    /// Sends `batch` as one transaction and checks the acknowledgement of every message.
    /// Either all of it is applied, or none of it and the first error is returned.
    pub fn commit(&mut self, mut batch: Batch) -> Result<(), EnforceError> {
        batch.end();
        if batch.msgs.is_empty() {
            return Ok(());
        }
        let end = batch.msg.begin_msg(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            NFPROTO_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
        );
        batch.msg.end_msg(end);
        self.drain();
        let begin_seq = self.next_seq();
        batch.msg.set_seq(0, begin_seq);
        let first_seq = begin_seq.wrapping_add(1);
        for (start, _) in &batch.msgs {
            let seq = self.next_seq();
            batch.msg.set_seq(*start, seq);
        }
        let end_seq = self.next_seq();
        batch.msg.set_seq(end, end_seq);
        let n = batch.msgs.len();
        let bytes = batch.msg.buf.len();
        self.grow_buffers(bytes + (64 << 10), n * RCVBUF_PER_MESSAGE + (1 << 20))?;
        send(&self.fd, &batch.msg.buf, SendFlags::empty())
            .map_err(|e| EnforceError::sys(format!("sending a {bytes}-byte nf_tables batch"), e))?;

        // nfnetlink processes the whole batch inside send(): every reply is queued by now.
        // Still, read blocking (with a timeout) until each message is acknowledged or the
        // batch as a whole was refused, then drain what else is queued.
        let mut acked = vec![false; n];
        let mut remaining = n;
        let mut failures: Vec<(usize, Errno)> = Vec::new();
        let mut batch_error: Option<Errno> = None;
        let mut blocking = true;
        loop {
            if remaining == 0 || batch_error.is_some() {
                blocking = false;
            }
            let flags = if blocking {
                RecvFlags::TRUNC
            } else {
                RecvFlags::TRUNC | RecvFlags::DONTWAIT
            };
            let got = match recv(&self.fd, &mut self.rbuf[..], flags) {
                Ok((_, full)) if full > self.rbuf.len() => {
                    return Err(EnforceError::Protocol(format!(
                        "a {full}-byte reply did not fit the {}-byte buffer",
                        self.rbuf.len()
                    )))
                }
                Ok((got, _)) => got,
                Err(Errno::AGAIN) if !blocking => break,
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => {
                    return Err(EnforceError::Protocol(format!(
                        "{remaining} of {n} messages unacknowledged after {RECV_TIMEOUT:?}"
                    )))
                }
                Err(e) => {
                    return Err(EnforceError::sys(
                        "reading nf_tables acknowledgements (outcome unknown)",
                        e,
                    ))
                }
            };
            if got == 0 {
                break;
            }
            for m in messages(&self.rbuf[..got]) {
                if m.ty != NLMSG_ERROR {
                    continue;
                }
                let code = error_code(m.payload).unwrap_or(-1);
                if m.seq == begin_seq || m.seq == end_seq {
                    if code != 0 {
                        batch_error = Some(errno_of(code));
                    }
                    continue;
                }
                let idx = m.seq.wrapping_sub(first_seq) as usize;
                if idx >= n {
                    continue; // a stale reply of an earlier request
                }
                if !acked[idx] {
                    acked[idx] = true;
                    remaining -= 1;
                }
                if code != 0 {
                    failures.push((idx, errno_of(code)));
                }
            }
        }
        if let Some(&(idx, errno)) = failures.iter().min_by_key(|(i, _)| *i) {
            return Err(EnforceError::Rejected {
                first: batch.msgs[idx].1.clone(),
                errno,
                failed: failures.len(),
                messages: n,
            });
        }
        if let Some(errno) = batch_error {
            return Err(EnforceError::Rejected {
                first: "the batch as a whole".into(),
                errno,
                failed: 0,
                messages: n,
            });
        }
        if remaining != 0 {
            return Err(EnforceError::Protocol(format!(
                "{remaining} of {n} messages were not acknowledged"
            )));
        }
        Ok(())
    }

    /// Dumps objects of type `nft_msg` in `family`, with request attributes written by
    /// `request`; calls `each` with the attributes of every object. An error reply comes
    /// back as [`EnforceError::Rejected`] (e.g. `ENOENT` for a missing table or set).
    pub fn dump(
        &mut self,
        nft_msg: u16,
        family: u8,
        label: &str,
        request: impl FnOnce(&mut MsgBuf),
        mut each: impl FnMut(&[u8]) -> Result<(), EnforceError>,
    ) -> Result<DumpEnd, EnforceError> {
        self.drain();
        let seq = self.next_seq();
        let mut msg = MsgBuf::default();
        let start = msg.begin_msg(
            (NFNL_SUBSYS_NFTABLES << 8) | nft_msg,
            NLM_F_REQUEST | NLM_F_DUMP,
            family,
            0,
        );
        request(&mut msg);
        msg.end_msg(start);
        msg.set_seq(start, seq);
        send(&self.fd, &msg.buf, SendFlags::empty())
            .map_err(|e| EnforceError::sys(format!("requesting {label}"), e))?;
        let mut end = DumpEnd::Complete;
        loop {
            let got = match recv(&self.fd, &mut self.rbuf[..], RecvFlags::TRUNC) {
                Ok((_, full)) if full > self.rbuf.len() => {
                    return Err(EnforceError::Protocol(format!(
                        "{label}: a {full}-byte reply did not fit the buffer"
                    )))
                }
                Ok((got, _)) => got,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(EnforceError::sys(format!("reading {label}"), e)),
            };
            if got == 0 {
                return Err(EnforceError::Protocol(format!("{label}: socket closed")));
            }
            for m in messages(&self.rbuf[..got]) {
                if m.seq != seq {
                    continue;
                }
                if m.flags & NLM_F_DUMP_INTR != 0 {
                    end = DumpEnd::Interrupted;
                }
                match m.ty {
                    NLMSG_DONE => return Ok(end),
                    NLMSG_ERROR => {
                        let code = error_code(m.payload).unwrap_or(-1);
                        if code == 0 {
                            continue;
                        }
                        return Err(EnforceError::Rejected {
                            first: label.to_owned(),
                            errno: errno_of(code),
                            failed: 1,
                            messages: 1,
                        });
                    }
                    _ => {
                        if m.flags & NLM_F_MULTI == 0 && m.payload.len() < NFGENMSG_LEN {
                            continue;
                        }
                        if let Some(body) = m.payload.get(NFGENMSG_LEN..) {
                            each(body)?;
                        }
                    }
                }
            }
        }
    }
}

fn new_socket() -> Result<OwnedFd, EnforceError> {
    let fd = socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        Some(netlink::NETFILTER),
    )
    .map_err(|e| EnforceError::sys("opening a NETLINK_NETFILTER socket", e))?;
    bind(&fd, &SocketAddrNetlink::new(0, 0))
        .map_err(|e| EnforceError::sys("binding the netlink socket", e))?;
    sockopt::set_socket_timeout(&fd, sockopt::Timeout::Recv, Some(RECV_TIMEOUT))
        .map_err(|e| EnforceError::sys("setting the netlink receive timeout", e))?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_with_padding_and_nesting() {
        let mut m = MsgBuf::default();
        let start = m.begin_msg(0x0a0c, NLM_F_REQUEST, NFPROTO_INET, 0);
        m.attr_str(1, "rampart");
        let nest = m.nest_begin(3);
        m.attr(1, &[192, 0, 2, 7]);
        m.attr_be64(4, 2000);
        m.nest_end(nest);
        m.end_msg(start);
        let msgs: Vec<_> = messages(&m.buf).collect();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].ty, 0x0a0c);
        let body = &msgs[0].payload[NFGENMSG_LEN..];
        let top: Vec<_> = attrs(body).collect();
        assert_eq!(top.len(), 2);
        assert_eq!((top[0].0, cstr(top[0].1)), (1, "rampart"));
        assert_eq!(top[1].0, 3, "NLA_F_NESTED is masked off");
        let inner: Vec<_> = attrs(top[1].1).collect();
        assert_eq!(inner[0], (1, &[192u8, 0, 2, 7][..]));
        assert_eq!(be64(inner[1].1), Some(2000));
    }

    #[test]
    fn truncated_attributes_end_the_iteration() {
        let data = [8u8, 0, 1, 0, 1, 2];
        assert_eq!(attrs(&data).count(), 0);
    }
}
