//! DNS TXT lookups for domain verification.
//!
//! An organization proves it owns an email domain by publishing a TXT record, the way Slack,
//! GitHub and Okta verify domains:
//!
//! ```text
//! _latchkey-challenge.example.com.  TXT  "latchkey-domain-verification=TOKEN"
//! ```
//!
//! ([`challenge_name`] and [`challenge_value`] build both halves.) This module is the small
//! RFC 1035 stub resolver that reads those records, so latchkeyd needs no DNS crate.
//!
//! What it does: it sends one query (QTYPE TXT, QCLASS IN, RD set, random 16-bit id) over UDP to
//! recursive resolvers (normally [`system_resolvers`]), one after another until one answers. An
//! answer counts only if it comes from the server's address and port and carries the query's id
//! and question; anything else is ignored. A truncated answer (TC bit) makes it ask the same
//! server again over TCP (RFC 1035 §4.2.2, 2-byte length prefix). It follows CNAME records that
//! the resolver put in the answer section, and returns the TXT records of the name at the end.
//!
//! What it doesn't: no DNSSEC validation (the answer is trusted as far as the resolver and the
//! network path to it are), no recursion of its own (it needs a recursive resolver), no EDNS(0),
//! no caching, and no `search`/`ndots` handling (every name is absolute).
//!
//! Unlike the rest of [`crate::domain`], this module performs network I/O.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout_at};

/// The label in front of the domain that holds the challenge record:
/// `_latchkey-challenge.<domain>` with TXT value `latchkey-domain-verification=<token>`.
///
/// The leading underscore keeps the name out of the way of host names (RFC 8552).
pub const CHALLENGE_PREFIX: &str = "_latchkey-challenge";

/// What the TXT value starts with; the token follows it directly.
pub const CHALLENGE_VALUE_PREFIX: &str = "latchkey-domain-verification=";

/// The name to look up for `domain`: `_latchkey-challenge.<domain>`.
pub fn challenge_name(domain: &str) -> String {
    format!("{CHALLENGE_PREFIX}.{domain}")
}

/// The TXT value an organization publishes for `token`: `latchkey-domain-verification=<token>`.
pub fn challenge_value(token: &str) -> String {
    format!("{CHALLENGE_VALUE_PREFIX}{token}")
}

/// Where resolvers are listed on Unix systems.
const RESOLV_CONF: &str = "/etc/resolv.conf";
/// The DNS port (RFC 1035 §4.2).
const DNS_PORT: u16 = 53;
/// How long each try waits for an answer.
const TIMEOUT: Duration = Duration::from_secs(3);
/// How many times a query is sent over UDP to one server before moving to the next.
const UDP_TRIES: usize = 2;
/// Receive buffer for UDP. Plain DNS answers are at most 512 bytes (RFC 1035 §4.2.1); the
/// larger buffer only means a server that sends more is not cut off.
const UDP_BUFFER: usize = 4096;
/// Fixed header size (RFC 1035 §4.1.1).
const HEADER_LEN: usize = 12;
/// TYPE TXT (RFC 1035 §3.2.2).
const TYPE_TXT: u16 = 16;
/// TYPE CNAME (RFC 1035 §3.2.2).
const TYPE_CNAME: u16 = 5;
/// CLASS IN (RFC 1035 §3.2.4).
const CLASS_IN: u16 = 1;
/// Header flags: QR (this is a response).
const FLAG_QR: u16 = 0x8000;
/// Header flags: TC (truncated).
const FLAG_TC: u16 = 0x0200;
/// Header flags: RD (recursion desired).
const FLAG_RD: u16 = 0x0100;
/// RCODE 3, name error.
const RCODE_NXDOMAIN: u8 = 3;
/// Longest name in text form without the trailing dot (RFC 1035 §2.3.4: 255 octets on the wire).
const MAX_NAME_TEXT: usize = 253;
/// Longest name on the wire, length octets and root label included (RFC 1035 §2.3.4).
const MAX_NAME_WIRE: usize = 255;
/// Longest label (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;
/// Compression pointers followed in one name before it is taken for a loop.
const MAX_POINTER_JUMPS: usize = 64;
/// CNAME records followed in one answer.
const MAX_CNAME_HOPS: usize = 16;

/// Why a lookup failed; `Display` says what to do next in plain words.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// No resolver to ask: `/etc/resolv.conf` is missing or lists none.
    #[error(
        "no DNS resolver is configured\nhint: add a `nameserver` line to /etc/resolv.conf on the \
         server, then try again"
    )]
    NoResolver,
    /// The server did not answer in time (after every try).
    #[error(
        "the DNS server {server} did not answer in time\nhint: check that this host can reach it \
         on port 53 (UDP and TCP), then try again"
    )]
    Timeout {
        /// The server that was asked last.
        server: SocketAddr,
    },
    /// The network failed (socket, send, receive or TCP connection).
    #[error(
        "the DNS lookup failed: {0}\nhint: check this host's network connection, then try again"
    )]
    Io(String),
    /// The name asked for is not a valid domain name, or the server's answer could not be read.
    #[error(
        "malformed DNS name or answer: {0}\nhint: check the domain name for typos; if it is \
         right, the DNS server sent an answer latchkeyd cannot read, so try another resolver"
    )]
    Malformed(&'static str),
    /// The server answered with an error code other than NXDOMAIN (RFC 1035 §4.1.1).
    #[error(
        "the DNS server answered with error code {rcode} ({})\nhint: the domain's DNS may be \
         misconfigured or briefly unavailable; try again in a few minutes",
        rcode_name(*rcode)
    )]
    ServerFailure {
        /// The RCODE of the answer (2 is SERVFAIL, 5 is REFUSED).
        rcode: u8,
    },
}

/// A short name for an RCODE (RFC 1035 §4.1.1, RFC 6895 §2.3).
fn rcode_name(rcode: u8) -> &'static str {
    match rcode {
        1 => "FORMERR, the server could not read the query",
        2 => "SERVFAIL, the server could not get an answer",
        4 => "NOTIMP, the server does not support this query",
        5 => "REFUSED, the server will not answer this host",
        _ => "unknown error",
    }
}

/// The resolvers of `/etc/resolv.conf` (`nameserver` lines, IPv4 and IPv6, port 53), in order;
/// empty when the file is missing or unreadable.
///
/// Reads the file synchronously; it is tiny and local.
pub fn system_resolvers() -> Vec<SocketAddr> {
    std::fs::read_to_string(RESOLV_CONF)
        .map(|text| parse_resolv_conf(&text))
        .unwrap_or_default()
}

/// Parses resolv.conf text: the address of every `nameserver` line, with port 53, in order.
///
/// Comments start with `#` or `;`; other keywords (`search`, `options`, ...) are skipped, and so
/// are addresses that do not parse. An IPv6 zone is kept when it is numeric (`fe80::1%2`);
/// an address with a named zone (`fe80::1%eth0`) is skipped, since naming interfaces needs libc.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let line = line.split(['#', ';']).next().unwrap_or_default();
            let mut words = line.split_whitespace();
            if words.next() != Some("nameserver") {
                return None;
            }
            parse_nameserver(words.next()?)
        })
        .collect()
}

/// One `nameserver` address, with an optional numeric IPv6 zone.
fn parse_nameserver(text: &str) -> Option<SocketAddr> {
    let (ip, zone) = match text.split_once('%') {
        Some((ip, zone)) => (ip, Some(zone)),
        None => (text, None),
    };
    match ip.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) if zone.is_none() => Some(SocketAddr::from((v4, DNS_PORT))),
        IpAddr::V4(_) => None,
        IpAddr::V6(v6) => {
            let scope_id = match zone {
                None => 0,
                Some(zone) => zone.parse().ok()?,
            };
            Some(SocketAddr::V6(SocketAddrV6::new(v6, DNS_PORT, 0, scope_id)))
        }
    }
}

/// TXT records of `name` (each record's character-strings concatenated, lossy UTF-8).
///
/// Asks `servers` in order until one answers: each gets 2 tries over UDP of 3 s each, and a
/// truncated answer is asked again over TCP. NXDOMAIN and an answer without TXT records both give
/// `Ok(vec![])`. When every server fails, the last server's error is returned; with no servers,
/// [`DnsError::NoResolver`]. A name that is not a valid domain name gives
/// [`DnsError::Malformed`] without sending anything.
pub async fn txt_records(servers: &[SocketAddr], name: &str) -> Result<Vec<String>, DnsError> {
    txt_records_with(servers, name, TIMEOUT).await
}

/// [`txt_records`] with the wait per try as a parameter, so tests need not wait 3 s.
async fn txt_records_with(
    servers: &[SocketAddr],
    name: &str,
    timeout: Duration,
) -> Result<Vec<String>, DnsError> {
    let qname = encode_name(name)?;
    let mut last = DnsError::NoResolver;
    for &server in servers {
        let query = Query::new(random_id()?, &qname);
        match ask(server, &query, timeout).await {
            Ok(records) => return Ok(records),
            Err(error) => {
                tracing::debug!(%server, %error, "DNS server failed; trying the next one");
                last = error;
            }
        }
    }
    Err(last)
}

/// A random query id from the OS random source (RFC 5452).
fn random_id() -> Result<u16, DnsError> {
    let mut id = [0u8; 2];
    getrandom::fill(&mut id).map_err(|e| DnsError::Io(format!("the random source failed: {e}")))?;
    Ok(u16::from_be_bytes(id))
}

/// Encodes a domain name in wire form (RFC 1035 §3.1), lower-cased, after checking it: labels of
/// 1 to 63 bytes of ASCII letters, digits, `-` and `_`; at most 253 bytes; one trailing dot
/// allowed.
fn encode_name(name: &str) -> Result<Vec<u8>, DnsError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(DnsError::Malformed("the domain name is empty"));
    }
    if name.len() > MAX_NAME_TEXT {
        return Err(DnsError::Malformed(
            "the domain name is longer than 253 characters",
        ));
    }
    let mut wire = Vec::with_capacity(name.len() + 2);
    for label in name.split('.') {
        if label.is_empty() {
            return Err(DnsError::Malformed(
                "the domain name has an empty label (a leading dot or two dots in a row)",
            ));
        }
        let len = u8::try_from(label.len())
            .ok()
            .filter(|&len| usize::from(len) <= MAX_LABEL)
            .ok_or(DnsError::Malformed(
                "a label of the domain name is longer than 63 characters",
            ))?;
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(DnsError::Malformed(
                "the domain name has a character other than ASCII letters, digits, '-' and '_'",
            ));
        }
        wire.push(len);
        wire.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    wire.push(0);
    Ok(wire)
}

/// One query as sent, with what an answer must echo.
struct Query {
    /// The random id.
    id: u16,
    /// The question name in lower-cased wire form.
    qname: Vec<u8>,
    /// The whole message.
    packet: Vec<u8>,
}

impl Query {
    /// A TXT/IN query for `qname` (wire form) with RD set (RFC 1035 §4.1).
    fn new(id: u16, qname: &[u8]) -> Self {
        let mut packet = Vec::with_capacity(HEADER_LEN + qname.len() + 4);
        packet.extend_from_slice(&id.to_be_bytes());
        packet.extend_from_slice(&FLAG_RD.to_be_bytes());
        packet.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
        packet.extend_from_slice(&[0; 6]); // ANCOUNT, NSCOUNT, ARCOUNT
        packet.extend_from_slice(qname);
        packet.extend_from_slice(&TYPE_TXT.to_be_bytes());
        packet.extend_from_slice(&CLASS_IN.to_be_bytes());
        Self {
            id,
            qname: qname.to_vec(),
            packet,
        }
    }
}

/// Asks one server: UDP, then TCP if the UDP answer was truncated.
async fn ask(
    server: SocketAddr,
    query: &Query,
    timeout: Duration,
) -> Result<Vec<String>, DnsError> {
    match ask_udp(server, query, timeout).await? {
        Reply::Records(records) => Ok(records),
        Reply::Truncated => ask_tcp(server, query, timeout).await,
        Reply::NotOurs => Err(DnsError::Malformed("the answer does not match the query")),
    }
}

/// Sends the query over UDP up to [`UDP_TRIES`] times, waiting `timeout` after each, and returns
/// the first answer from `server` that matches it (never [`Reply::NotOurs`]).
async fn ask_udp(server: SocketAddr, query: &Query, timeout: Duration) -> Result<Reply, DnsError> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| io_error("opening a UDP socket", &e))?;
    let mut buffer = vec![0u8; UDP_BUFFER];
    for _ in 0..UDP_TRIES {
        socket
            .send_to(&query.packet, server)
            .await
            .map_err(|e| io_error("sending the query", &e))?;
        let deadline = Instant::now() + timeout;
        loop {
            let (len, from) = match timeout_at(deadline, socket.recv_from(&mut buffer)).await {
                Err(_elapsed) => break,
                Ok(Err(e)) => return Err(io_error("receiving the answer", &e)),
                Ok(Ok(received)) => received,
            };
            // Anyone can send to our port; only the server's own address counts.
            if from.ip() != server.ip() || from.port() != server.port() {
                continue;
            }
            let Some(packet) = buffer.get(..len) else {
                continue;
            };
            match parse_response(packet, query)? {
                Reply::NotOurs => continue,
                reply => return Ok(reply),
            }
        }
    }
    Err(DnsError::Timeout { server })
}

/// Sends the query over TCP with its 2-byte length prefix (RFC 1035 §4.2.2) and reads one answer,
/// all within `timeout`.
async fn ask_tcp(
    server: SocketAddr,
    query: &Query,
    timeout: Duration,
) -> Result<Vec<String>, DnsError> {
    let exchange = async {
        let mut stream = TcpStream::connect(server)
            .await
            .map_err(|e| io_error("connecting over TCP", &e))?;
        let len = u16::try_from(query.packet.len())
            .map_err(|_| DnsError::Malformed("the query is too long"))?;
        let mut message = Vec::with_capacity(2 + query.packet.len());
        message.extend_from_slice(&len.to_be_bytes());
        message.extend_from_slice(&query.packet);
        stream
            .write_all(&message)
            .await
            .map_err(|e| io_error("sending the query over TCP", &e))?;
        let mut len = [0u8; 2];
        stream
            .read_exact(&mut len)
            .await
            .map_err(|e| io_error("receiving the answer over TCP", &e))?;
        let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream
            .read_exact(&mut answer)
            .await
            .map_err(|e| io_error("receiving the answer over TCP", &e))?;
        Ok(answer)
    };
    let answer = timeout_at(Instant::now() + timeout, exchange)
        .await
        .map_err(|_elapsed| DnsError::Timeout { server })??;
    match parse_response(&answer, query)? {
        Reply::Records(records) => Ok(records),
        Reply::Truncated => Err(DnsError::Malformed("the answer over TCP is truncated")),
        Reply::NotOurs => Err(DnsError::Malformed(
            "the answer over TCP does not match the query",
        )),
    }
}

/// An I/O error with what was being done.
fn io_error(doing: &str, error: &io::Error) -> DnsError {
    DnsError::Io(format!("{doing}: {error}"))
}

/// What a received message means for the query.
#[derive(Debug, PartialEq)]
enum Reply {
    /// Not an answer to this query (other id, not a response, other question): keep waiting.
    NotOurs,
    /// The answer was cut short (TC bit): ask again over TCP.
    Truncated,
    /// The TXT records of the name (empty for NXDOMAIN or no records).
    Records(Vec<String>),
}

/// One resource record of the answer section, with its RDATA as a range of the message so names
/// inside it can follow compression pointers.
struct Record {
    /// Owner name, lower-cased wire form.
    owner: Vec<u8>,
    /// TYPE.
    rtype: u16,
    /// CLASS.
    class: u16,
    /// Where RDATA starts in the message.
    rdata_start: usize,
    /// Where RDATA ends in the message (exclusive).
    rdata_end: usize,
}

/// Reads a response message (RFC 1035 §4.1) to `query`. Never panics, whatever `packet` holds.
///
/// A message that is not a response, or has another id or question, is [`Reply::NotOurs`]; one
/// that is ours but cannot be read is [`DnsError::Malformed`].
fn parse_response(packet: &[u8], query: &Query) -> Result<Reply, DnsError> {
    let (Ok(id), Ok(flags), Ok(qdcount), Ok(ancount)) = (
        read_u16(packet, 0),
        read_u16(packet, 2),
        read_u16(packet, 4),
        read_u16(packet, 6),
    ) else {
        return Ok(Reply::NotOurs);
    };
    let opcode = (flags >> 11) & 0xF;
    if id != query.id || flags & FLAG_QR == 0 || opcode != 0 {
        return Ok(Reply::NotOurs);
    }
    // Low 4 bits, so the cast cannot truncate.
    let rcode = (flags & 0xF) as u8;
    if qdcount != 1 {
        // Some servers drop the question when they refuse or fail; the id still ties it to us.
        if qdcount == 0 && rcode != 0 && rcode != RCODE_NXDOMAIN {
            return Err(DnsError::ServerFailure { rcode });
        }
        return Ok(Reply::NotOurs);
    }
    let Ok((qname, after_qname)) = read_name(packet, HEADER_LEN) else {
        return Ok(Reply::NotOurs);
    };
    let (Ok(qtype), Ok(qclass)) = (
        read_u16(packet, after_qname),
        read_u16(packet, after_qname + 2),
    ) else {
        return Ok(Reply::NotOurs);
    };
    if qname != query.qname || qtype != TYPE_TXT || qclass != CLASS_IN {
        return Ok(Reply::NotOurs);
    }
    if flags & FLAG_TC != 0 {
        return Ok(Reply::Truncated);
    }
    match rcode {
        0 => {}
        RCODE_NXDOMAIN => return Ok(Reply::Records(Vec::new())),
        rcode => return Err(DnsError::ServerFailure { rcode }),
    }

    let mut pos = after_qname + 4;
    let mut answers = Vec::new();
    for _ in 0..ancount {
        let (owner, after_owner) = read_name(packet, pos)?;
        let rtype = read_u16(packet, after_owner)?;
        let class = read_u16(packet, after_owner + 2)?;
        // TTL (4 bytes) is not needed.
        let rdlength = usize::from(read_u16(packet, after_owner + 8)?);
        let rdata_start = after_owner + 10;
        let rdata_end = rdata_start + rdlength;
        if rdata_end > packet.len() {
            return Err(DnsError::Malformed(
                "a record runs past the end of the answer",
            ));
        }
        answers.push(Record {
            owner,
            rtype,
            class,
            rdata_start,
            rdata_end,
        });
        pos = rdata_end;
    }

    // The names the question stands for: itself, then each CNAME target in turn.
    let mut names = vec![query.qname.clone()];
    for _ in 0..MAX_CNAME_HOPS {
        let Some(current) = names.last() else { break };
        let Some(cname) = answers
            .iter()
            .find(|r| r.rtype == TYPE_CNAME && r.class == CLASS_IN && r.owner == *current)
        else {
            break;
        };
        let (target, end) = read_name(packet, cname.rdata_start)?;
        if end > cname.rdata_end {
            return Err(DnsError::Malformed("a CNAME target runs past its record"));
        }
        if names.contains(&target) {
            break;
        }
        names.push(target);
    }

    let mut records = Vec::new();
    for record in &answers {
        if record.rtype == TYPE_TXT && record.class == CLASS_IN && names.contains(&record.owner) {
            let rdata =
                packet
                    .get(record.rdata_start..record.rdata_end)
                    .ok_or(DnsError::Malformed(
                        "a record runs past the end of the answer",
                    ))?;
            records.push(decode_txt(rdata)?);
        }
    }
    Ok(Reply::Records(records))
}

/// A big-endian `u16` at `at`, or `Malformed` past the end.
fn read_u16(packet: &[u8], at: usize) -> Result<u16, DnsError> {
    packet
        .get(at..)
        .and_then(|rest| rest.first_chunk::<2>())
        .map(|bytes| u16::from_be_bytes(*bytes))
        .ok_or(DnsError::Malformed("the answer ends early"))
}

/// Reads the name at `start` (RFC 1035 §3.1), following compression pointers (§4.1.4), and
/// returns it in lower-cased wire form with the offset just past it where it started.
///
/// Gives up on pointer loops (more than [`MAX_POINTER_JUMPS`] jumps), names over 255 bytes,
/// reserved label types and names that run past the end.
fn read_name(packet: &[u8], start: usize) -> Result<(Vec<u8>, usize), DnsError> {
    const SHORT: DnsError = DnsError::Malformed("a name runs past the end of the answer");
    let mut name = Vec::new();
    let mut pos = start;
    // Where the name ends at its original place: set by the first pointer.
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *packet.get(pos).ok_or(SHORT)?;
        match len & 0xC0 {
            0x00 if len == 0 => {
                name.push(0);
                return Ok((name, end.unwrap_or(pos + 1)));
            }
            0x00 => {
                let label = packet
                    .get(pos + 1..pos + 1 + usize::from(len))
                    .ok_or(SHORT)?;
                name.push(len);
                name.extend(label.iter().map(u8::to_ascii_lowercase));
                // Counting the root label still to come.
                if name.len() + 1 > MAX_NAME_WIRE {
                    return Err(DnsError::Malformed("a name in the answer is too long"));
                }
                pos += 1 + usize::from(len);
            }
            0xC0 => {
                let low = *packet.get(pos + 1).ok_or(SHORT)?;
                end.get_or_insert(pos + 2);
                jumps += 1;
                if jumps > MAX_POINTER_JUMPS {
                    return Err(DnsError::Malformed(
                        "compression pointers in the answer loop",
                    ));
                }
                pos = (usize::from(len & 0x3F) << 8) | usize::from(low);
            }
            _ => {
                return Err(DnsError::Malformed(
                    "a name in the answer uses a reserved label type",
                ));
            }
        }
    }
}

/// A TXT record's RDATA (RFC 1035 §3.3.14): its character-strings concatenated, lossy UTF-8.
fn decode_txt(rdata: &[u8]) -> Result<String, DnsError> {
    let mut text = Vec::with_capacity(rdata.len());
    let mut rest = rdata;
    while let Some((&len, tail)) = rest.split_first() {
        let (string, tail) = tail
            .split_at_checked(usize::from(len))
            .ok_or(DnsError::Malformed(
                "a TXT string runs past the end of its record",
            ))?;
        text.extend_from_slice(string);
        rest = tail;
    }
    Ok(String::from_utf8_lossy(&text).into_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// What the test responder sends back for one UDP query.
    enum Out {
        /// From the responder's own socket.
        Reply(Vec<u8>),
        /// From another socket (another port), which the client must ignore.
        FromElsewhere(Vec<u8>),
    }

    /// Offset just past the question of a query the client built (no compression).
    fn question_end(query: &[u8]) -> usize {
        let mut pos = HEADER_LEN;
        while query[pos] != 0 {
            pos += 1 + usize::from(query[pos]);
        }
        pos + 1 + 4
    }

    /// An answer record for [`response`]: (owner, type, class, rdata).
    type Rr<'a> = (&'a [u8], u16, u16, Vec<u8>);

    /// A response to `query` with extra header `flags` (RCODE, TC) and `answers` as
    /// (owner, type, class, rdata).
    fn response(query: &[u8], flags: u16, answers: &[Rr<'_>]) -> Vec<u8> {
        let mut out = query[..2].to_vec();
        out.extend_from_slice(&(FLAG_QR | FLAG_RD | 0x0080 | flags).to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&u16::try_from(answers.len()).unwrap().to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&query[HEADER_LEN..question_end(query)]);
        for (owner, rtype, class, rdata) in answers {
            out.extend_from_slice(owner);
            out.extend_from_slice(&rtype.to_be_bytes());
            out.extend_from_slice(&class.to_be_bytes());
            out.extend_from_slice(&300u32.to_be_bytes());
            out.extend_from_slice(&u16::try_from(rdata.len()).unwrap().to_be_bytes());
            out.extend_from_slice(rdata);
        }
        out
    }

    /// RDATA of a TXT record made of `strings`.
    fn txt(strings: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for s in strings {
            out.push(u8::try_from(s.len()).unwrap());
            out.extend_from_slice(s.as_bytes());
        }
        out
    }

    /// A pointer to the question name, which always starts at offset 12.
    const TO_QUESTION: &[u8] = &[0xC0, 0x0C];

    /// The usual answer: two TXT records, the second split in two strings, owners compressed.
    fn two_records(query: &[u8]) -> Vec<u8> {
        response(
            query,
            0,
            &[
                (
                    TO_QUESTION,
                    TYPE_TXT,
                    CLASS_IN,
                    txt(&["latchkey-domain-verification=abc"]),
                ),
                (TO_QUESTION, TYPE_TXT, CLASS_IN, txt(&["hello, ", "world"])),
                // Ignored: not TXT, not class IN.
                (TO_QUESTION, 1, CLASS_IN, vec![192, 0, 2, 1]),
                (TO_QUESTION, TYPE_TXT, 3, txt(&["chaos"])),
            ],
        )
    }

    fn expected() -> Vec<String> {
        vec![
            "latchkey-domain-verification=abc".to_owned(),
            "hello, world".to_owned(),
        ]
    }

    /// Answers one UDP query with any number of messages.
    type UdpHandler = fn(&[u8]) -> Vec<Out>;
    /// Answers one TCP query with one message.
    type TcpHandler = fn(&[u8]) -> Vec<u8>;

    /// A DNS server on 127.0.0.1:0 answering UDP queries with `udp`, and TCP queries on the same
    /// port with `tcp` when given.
    async fn responder(udp: UdpHandler, tcp: Option<TcpHandler>) -> SocketAddr {
        let (socket, listener) = loop {
            let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            if tcp.is_none() {
                break (socket, None);
            }
            // The same port may be taken for TCP; pick another then.
            if let Ok(listener) = TcpListener::bind(socket.local_addr().unwrap()).await {
                break (socket, Some(listener));
            }
        };
        let addr = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let elsewhere = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let mut buf = [0u8; 512];
            loop {
                let (len, client) = socket.recv_from(&mut buf).await.unwrap();
                let query = &buf[..len];
                assert_eq!(read_u16(query, 2).unwrap(), FLAG_RD, "RD set, nothing else");
                for out in udp(query) {
                    match out {
                        Out::Reply(p) => socket.send_to(&p, client).await.unwrap(),
                        Out::FromElsewhere(p) => elsewhere.send_to(&p, client).await.unwrap(),
                    };
                }
            }
        });
        if let (Some(listener), Some(tcp)) = (listener, tcp) {
            tokio::spawn(async move {
                loop {
                    let (mut stream, _) = listener.accept().await.unwrap();
                    let mut len = [0u8; 2];
                    stream.read_exact(&mut len).await.unwrap();
                    let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    stream.read_exact(&mut query).await.unwrap();
                    let answer = tcp(&query);
                    let len = u16::try_from(answer.len()).unwrap().to_be_bytes();
                    stream.write_all(&len).await.unwrap();
                    stream.write_all(&answer).await.unwrap();
                }
            });
        }
        addr
    }

    const NAME: &str = "_latchkey-challenge.Example.com.";
    const SHORT: Duration = Duration::from_millis(100);

    #[test]
    fn challenge_record_format() {
        assert_eq!(
            challenge_name("example.com"),
            "_latchkey-challenge.example.com"
        );
        assert_eq!(
            challenge_value("tok123"),
            "latchkey-domain-verification=tok123"
        );
        assert!(encode_name(&challenge_name("example.com")).is_ok());
    }

    #[test]
    fn query_is_rfc1035_txt_in_with_rd() {
        let query = Query::new(0xBEEF, &encode_name("a.Bc").unwrap());
        assert_eq!(
            query.packet,
            [
                0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, // header
                1, b'a', 2, b'b', b'c', 0, // name, lower-cased
                0, 16, 0, 1, // TXT IN
            ]
        );
    }

    #[tokio::test]
    async fn two_records_with_split_strings_and_compressed_owner() {
        let server = responder(|q| vec![Out::Reply(two_records(q))], None).await;
        let records = txt_records_with(&[server], NAME, SHORT).await.unwrap();
        assert_eq!(records, expected());
    }

    #[tokio::test]
    async fn nxdomain_and_no_records_are_empty() {
        let server = responder(|q| vec![Out::Reply(response(q, 3, &[]))], None).await;
        assert!(
            txt_records_with(&[server], NAME, SHORT)
                .await
                .unwrap()
                .is_empty()
        );
        let server = responder(|q| vec![Out::Reply(response(q, 0, &[]))], None).await;
        assert!(
            txt_records_with(&[server], NAME, SHORT)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn servfail_is_a_server_failure() {
        let server = responder(|q| vec![Out::Reply(response(q, 2, &[]))], None).await;
        let error = txt_records_with(&[server], NAME, SHORT).await.unwrap_err();
        assert!(
            matches!(error, DnsError::ServerFailure { rcode: 2 }),
            "{error:?}"
        );
        assert!(error.to_string().contains("SERVFAIL"));
        assert!(error.to_string().contains("\nhint: "));
    }

    #[tokio::test]
    async fn wrong_id_other_source_and_other_question_are_ignored() {
        let server = responder(
            |q| {
                let bogus = response(q, 0, &[(TO_QUESTION, TYPE_TXT, CLASS_IN, txt(&["bogus"]))]);
                let mut wrong_id = bogus.clone();
                wrong_id[0] ^= 0xFF;
                let mut wrong_question = bogus.clone();
                wrong_question[HEADER_LEN + 1] ^= 0x01; // first letter of the name
                let mut not_response = bogus.clone();
                not_response[2] &= 0x7F; // QR clear
                vec![
                    Out::Reply(wrong_id),
                    Out::FromElsewhere(bogus),
                    Out::Reply(wrong_question),
                    Out::Reply(not_response),
                    Out::Reply(b"garbage".to_vec()),
                    Out::Reply(two_records(q)),
                ]
            },
            None,
        )
        .await;
        let records = txt_records_with(&[server], NAME, SHORT).await.unwrap();
        assert_eq!(records, expected());
    }

    #[tokio::test]
    async fn a_lost_udp_answer_is_retried() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static QUERIES: AtomicUsize = AtomicUsize::new(0);
        let server = responder(
            |q| {
                if QUERIES.fetch_add(1, Ordering::SeqCst) == 0 {
                    Vec::new()
                } else {
                    vec![Out::Reply(two_records(q))]
                }
            },
            None,
        )
        .await;
        let records = txt_records_with(&[server], NAME, SHORT).await.unwrap();
        assert_eq!(records, expected());
        assert_eq!(QUERIES.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn truncated_udp_falls_back_to_tcp() {
        let server = responder(
            |q| vec![Out::Reply(response(q, FLAG_TC, &[]))],
            Some(two_records),
        )
        .await;
        let records = txt_records_with(&[server], NAME, SHORT).await.unwrap();
        assert_eq!(records, expected());
    }

    #[tokio::test]
    async fn silence_is_a_timeout_and_the_next_server_is_asked() {
        let silent = responder(|_| Vec::new(), None).await;
        let started = std::time::Instant::now();
        let error = txt_records_with(&[silent], NAME, SHORT).await.unwrap_err();
        assert!(
            matches!(error, DnsError::Timeout { server } if server == silent),
            "{error:?}"
        );
        let elapsed = started.elapsed();
        assert!(
            elapsed >= 2 * SHORT && elapsed < Duration::from_secs(2),
            "{elapsed:?}"
        );

        let good = responder(|q| vec![Out::Reply(two_records(q))], None).await;
        let records = txt_records_with(&[silent, good], NAME, SHORT)
            .await
            .unwrap();
        assert_eq!(records, expected());
    }

    #[tokio::test]
    async fn no_servers_is_no_resolver() {
        let error = txt_records_with(&[], NAME, SHORT).await.unwrap_err();
        assert!(matches!(error, DnsError::NoResolver), "{error:?}");
        assert!(error.to_string().contains("resolv.conf"));
    }

    #[tokio::test]
    async fn cname_chain_is_followed() {
        let server = responder(
            |q| {
                let qend = question_end(q);
                // CNAME question -> target.example.net, written out in full at offset rdata.
                let target = encode_name("Target.example.net").unwrap();
                // The CNAME record's RDATA starts after: question, 2 owner + 10 fixed bytes.
                let target_at = u16::try_from(qend + 2 + 10).unwrap();
                let to_target = (0xC000 | target_at).to_be_bytes();
                vec![Out::Reply(response(
                    q,
                    0,
                    &[
                        (TO_QUESTION, TYPE_CNAME, CLASS_IN, target),
                        (&to_target, TYPE_TXT, CLASS_IN, txt(&["via cname"])),
                        // Owned by a name outside the chain: ignored.
                        (
                            &[3, b'o', b'r', b'g', 0],
                            TYPE_TXT,
                            CLASS_IN,
                            txt(&["other"]),
                        ),
                    ],
                ))]
            },
            None,
        )
        .await;
        let records = txt_records_with(&[server], NAME, SHORT).await.unwrap();
        assert_eq!(records, ["via cname"]);
    }

    #[tokio::test]
    async fn malformed_names_are_rejected_before_asking() {
        let long_label = format!("{}.com", "a".repeat(64));
        let long_name = format!("{}.comm", ["abcdefghi"; 25].join(".")); // 254 bytes
        assert_eq!(long_name.len(), 254);
        for name in [
            "",
            ".",
            "..",
            ".example.com",
            "example..com",
            "example.com..",
            "exa mple.com",
            "exämple.com",
            "example.com/x",
            "ex*ample.com",
            &long_label,
            &long_name,
        ] {
            // An unroutable server: validation must fail before any packet is sent.
            let error = txt_records_with(&["192.0.2.1:53".parse().unwrap()], name, SHORT)
                .await
                .unwrap_err();
            assert!(
                matches!(error, DnsError::Malformed(_)),
                "{name:?}: {error:?}"
            );
        }
        let ok_label = format!("{}.com", "a".repeat(63));
        let ok_name = format!("{}.com", ["abcdefghi"; 25].join(".")); // 253 bytes
        for name in [
            "example.com",
            "example.com.",
            "_latchkey-challenge.x-y.EXAMPLE.com",
            "localhost",
            &ok_label,
            &ok_name,
            &format!("{ok_name}."),
        ] {
            assert!(encode_name(name).is_ok(), "{name:?}");
        }
    }

    #[test]
    fn resolv_conf() {
        let text = "\
# Generated by NetworkManager
search example.com corp.example.com
; another comment
nameserver 10.0.0.1
nameserver   ::1   # loopback
options edns0 trust-ad ndots:2
nameserver 2001:db8::53
nameserver fe80::1%2
nameserver fe80::1%eth0
nameserver not-an-address
nameserver
#nameserver 10.9.9.9
nameserver 1.1.1.1;comment
domain example.com
";
        let expected: Vec<SocketAddr> = vec![
            "10.0.0.1:53".parse().unwrap(),
            "[::1]:53".parse().unwrap(),
            "[2001:db8::53]:53".parse().unwrap(),
            "[fe80::1%2]:53".parse().unwrap(),
            "1.1.1.1:53".parse().unwrap(),
        ];
        assert_eq!(parse_resolv_conf(text), expected);
        assert!(parse_resolv_conf("").is_empty());
        // Whatever the host has, reading it must not panic.
        let _ = system_resolvers();
    }

    #[test]
    fn pointer_loops_and_bad_lengths_are_malformed() {
        let query = Query::new(7, &encode_name("a.b").unwrap());
        // An answer whose owner name points at itself.
        let mut packet = response(
            &query.packet,
            0,
            &[(&[0xC0, 0x00], TYPE_TXT, CLASS_IN, txt(&["x"]))],
        );
        let owner_at = question_end(&query.packet);
        packet[owner_at + 1] = u8::try_from(owner_at).unwrap();
        assert!(matches!(
            parse_response(&packet, &query),
            Err(DnsError::Malformed(_))
        ));
        // A TXT string longer than its record.
        let packet = response(
            &query.packet,
            0,
            &[(TO_QUESTION, TYPE_TXT, CLASS_IN, vec![5, b'x'])],
        );
        assert!(matches!(
            parse_response(&packet, &query),
            Err(DnsError::Malformed(_))
        ));
        // RDLENGTH past the end of the message.
        let mut packet = response(
            &query.packet,
            0,
            &[(TO_QUESTION, TYPE_TXT, CLASS_IN, txt(&["x"]))],
        );
        packet.truncate(packet.len() - 1);
        assert!(matches!(
            parse_response(&packet, &query),
            Err(DnsError::Malformed(_))
        ));
        // An empty TXT record is one empty string.
        let packet = response(
            &query.packet,
            0,
            &[(TO_QUESTION, TYPE_TXT, CLASS_IN, Vec::new())],
        );
        assert_eq!(
            parse_response(&packet, &query).unwrap(),
            Reply::Records(vec![String::new()])
        );
        // Invalid UTF-8 is replaced, not rejected.
        let packet = response(
            &query.packet,
            0,
            &[(TO_QUESTION, TYPE_TXT, CLASS_IN, vec![2, b'o', 0xFF])],
        );
        assert_eq!(
            parse_response(&packet, &query).unwrap(),
            Reply::Records(vec!["o\u{FFFD}".to_owned()])
        );
    }

    /// xorshift64*: reproducible noise without a dependency.
    struct Noise(u64);

    impl Noise {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
        }
    }

    #[test]
    fn garbage_never_panics_the_parser() {
        let query = Query::new(
            0x1234,
            &encode_name("_latchkey-challenge.example.com").unwrap(),
        );
        let valid = two_records(&query.packet);
        let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
        // Not ours, answered, error.
        let mut seen = [0usize; 3];
        for round in 0..2_000 {
            let packet: Vec<u8> = match round % 4 {
                // Pure noise, sometimes with our id so it gets past the first check.
                0 | 1 => {
                    let len = noise.below(600);
                    let mut p: Vec<u8> = (0..len).map(|_| noise.next() as u8).collect();
                    if round % 4 == 1 && p.len() >= 4 {
                        p[..2].copy_from_slice(&query.id.to_be_bytes());
                        p[2] |= 0x80;
                        p[2] &= 0x87;
                    }
                    p
                }
                // A valid answer with a few bytes changed past the question, then cut somewhere.
                _ => {
                    let mut p = valid.clone();
                    let question_end = question_end(&query.packet);
                    for _ in 0..1 + noise.below(4) {
                        let at = question_end + noise.below(p.len() - question_end);
                        p[at] = noise.next() as u8;
                    }
                    if round % 4 == 3 {
                        p.truncate(noise.below(p.len() + 1));
                    }
                    p
                }
            };
            match parse_response(&packet, &query) {
                Ok(Reply::NotOurs) => seen[0] += 1,
                Ok(_) => seen[1] += 1,
                Err(_) => seen[2] += 1,
            }
            let _ = read_name(&packet, noise.below(packet.len() + 1));
            let _ = decode_txt(&packet);
        }
        // The noise reached every outcome, not only the first checks.
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }
}
